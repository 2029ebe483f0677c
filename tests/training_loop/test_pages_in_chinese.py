"""The training pages speak the language the staff user chose (#16): the gate's decision worded again
from its figures, names, and the errors the forms show; an English user still reads them in English."""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from annotate.models import Collection, ExportSnapshot
from training.models import TrainingRun

from .test_run_page import finished_run, metrics_now, override_url, page_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def collection():
    return Collection.objects.create(slug="zhp", name="ZH pages")


def signed_in(client, user, language: str):
    client.force_login(user)
    client.post("/accounts/language/", {"language": language, "next": "/"})
    return client


def test_the_run_page_words_the_decision_and_names_in_chinese(client, staff_user, collection):
    metrics = metrics_now(dev=12, gain=0.1)
    run = finished_run(collection, metrics)
    html = signed_in(client, staff_user, "zh-hans").get(page_url(run)).content.decode()
    assert "验证查询不足（12 个）：门控至少需要 20 个，因此不上线任何模型" in html
    assert metrics["decision"]["reason"] not in html  # the stored English sentence is not shown
    assert "双塔模型" in html and 'data-candidate="bi-encoder"' in html  # shown translated, keyed as recorded
    assert "仅作参照" in html and "对比 BM25" in html and "已完成" in html


def test_the_runs_list_words_each_reason_in_chinese(client, staff_user, collection):
    passed = finished_run(collection, metrics_now(dev=30, gain=0.1), promoted=True)
    html = signed_in(client, staff_user, "zh-hans").get(reverse("training-runs", args=[collection.slug])).content.decode()
    assert "已上线：在 30 个验证查询上" in html and "<strong>BM25 融合</strong>" in html
    assert passed.metrics["decision"]["reason"] not in html


def test_an_overridden_run_says_who_and_what_the_gate_had_said_in_chinese(client, staff_user, collection):
    run = finished_run(collection, metrics_now(dev=12, gain=0.1))
    chinese = signed_in(client, staff_user, "zh-hans")
    assert chinese.post(override_url(run), {"reason": "标注一致"}).status_code == 302
    html = chinese.get(page_url(run)).content.decode()
    assert "由管理员强制上线" in html and "门控原先的结论：" in html and "验证查询不足（12 个）" in html


@pytest.mark.parametrize("language, refused", [
    ("zh-hans", "必须填写理由：说明为什么这个模型应当上线服务。"),
    ("en", "A reason is required: say why this model should serve."),
])
def test_the_override_form_refuses_a_blank_reason_in_the_users_language(client, staff_user, collection,
                                                                         language, refused):
    run = finished_run(collection, metrics_now(dev=12, gain=0.1))
    response = signed_in(client, staff_user, language).post(override_url(run), {"reason": "   "})
    assert response.status_code == 400 and refused in response.content.decode()


@pytest.mark.parametrize("language, refused", [
    ("zh-hans", "epochs 必须是正整数，收到的是 0"),
    ("en", "epochs must be a positive integer, got 0"),
])
def test_a_bad_training_setting_is_refused_in_the_users_language(client, staff_user, collection, language, refused):
    data = {"enabled": "on", "every_hours": 6, "min_new_judgments": 40, "promotion_margin": 0.01,
            "train_params": '{"epochs": 0}', "export_params": "{}"}
    response = signed_in(client, staff_user, language).post(reverse("retrain-schedule", args=[collection.slug]), data)
    assert response.status_code == 200 and refused in response.content.decode()


@pytest.mark.parametrize("language, refused", [
    ("zh-hans", "已有一个等待中或运行中的训练运行"),
    ("en", "already has a pending or running training run"),
])
def test_starting_a_second_run_is_refused_in_the_users_language(client, staff_user, collection, language, refused):
    snapshot = ExportSnapshot.objects.create(collection=collection, format="listwise", file_path="/tmp/none.jsonl",
                                             status=ExportSnapshot.Status.DONE)
    TrainingRun.objects.create(collection=collection, snapshot=snapshot, base_model="tiny",
                               status=TrainingRun.Status.RUNNING)
    response = signed_in(client, staff_user, language).post(
        reverse("training-runs", args=[collection.slug]),
        {"snapshot": snapshot.pk, "candidates": ["zero-shot", "bi-encoder", "fusion"]})
    assert response.status_code == 200 and refused in response.content.decode()


def test_the_loss_chart_and_the_schedule_speak_chinese(client, staff_user, collection):
    run = finished_run(collection, metrics_now(dev=30, gain=0.1))
    TrainingRun.objects.filter(pk=run.pk).update(loss_curve=[["bi-encoder", 1, 2.0], ["bi-encoder", 4, 1.0]])
    chinese = signed_in(client, staff_user, "zh-hans")
    assert "各阶段的训练损失" in chinese.get(page_url(run)).content.decode()
    assert "还没有重新训练策略" in chinese.get(reverse("retrain-schedule", args=[collection.slug])).content.decode()


def test_serving_warnings_are_english_for_the_api_and_chinese_on_the_preview():
    from training.rerank import serving_warnings, shown_warnings

    model = {"kind": "cross-encoder", "dev": {"ndcg@10": 0.41, "bm25_ndcg@10": 0.52, "queries": 7,
                                              "override_reason": "want to see it"}}
    with translation.override("zh-hans"):
        assert serving_warnings(model, [0.1, 0.9])[0].startswith("the serving model ranked below BM25")
        shown = shown_warnings(model, [0.1, 0.9])[0]
    assert "0.4100" in shown and "0.5200" in shown and "管理员强制上线" in shown
