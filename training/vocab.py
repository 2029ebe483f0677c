"""Teaching an English vocabulary Chinese: add the CJK characters a model cannot see.

The default base model (all-MiniLM-L6-v2, BERT's uncased WordPiece vocabulary) splits Chinese
into single characters but has no entry for most of them: on KUAKE-QTR about 72% of the tokens
become ``[UNK]``, so a query and a title that share every character look alike to it. Adding the
training data's missing characters as tokens gives each its own embedding row.

How the new rows start matters. transformers' ``resize_token_embeddings`` puts every new row at
the mean of the old ones, so all added characters start identical: the encoder cannot tell that
the query's 糖 is the title's 糖 and not its 尿 until training has pulled the rows apart, which a
few hundred steps do not. Here each row starts at the mean plus Gaussian noise with the old rows'
per-dimension spread: distinct from the first step (attention can match a character with itself,
the lexical signal BM25 lives on) and still inside the distribution the encoder was trained on.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import torch

# CJK Unified Ideographs and Extension A, plus the compatibility block: the characters BERT's basic
# tokenizer splits one by one (tokenize_chinese_chars), so each is a whole token once added.
_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF))


def is_cjk(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def missing_cjk_chars(tokenizer, texts: Iterable[str], *, min_count: int = 1) -> list[str]:
    """CJK characters of ``texts`` the tokenizer maps to its unknown token, most frequent first
    (ties by code point, so the same data gives the same vocabulary)."""
    vocab = tokenizer.get_vocab()
    counts = Counter(char for text in texts for char in text if is_cjk(char) and char not in vocab)
    return [char for char, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])) if n >= min_count]


def add_tokens_with_distinct_embeddings(model, tokenizer, tokens: list[str], *, seed: int = 0) -> int:
    """Add ``tokens`` to the tokenizer and the model's input embeddings; returns how many were new.
    New rows: mean + N(0, std) of the existing rows, per dimension (see the module docstring)."""
    added = tokenizer.add_tokens(tokens)
    if not added:
        return 0
    embeddings = model.get_input_embeddings()
    old = embeddings.weight.shape[0]
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    weight = model.get_input_embeddings().weight
    with torch.no_grad():
        existing = weight[:old].float()
        mean, std = existing.mean(dim=0), existing.std(dim=0)
        generator = torch.Generator(device="cpu").manual_seed(seed)
        noise = torch.randn((weight.shape[0] - old, weight.shape[1]), generator=generator)
        weight[old:] = (mean.cpu() + noise * std.cpu()).to(weight.dtype).to(weight.device)
    return added
