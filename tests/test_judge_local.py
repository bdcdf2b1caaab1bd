"""Local judges on tiny Llamas (real tokenizer, built in process): next-token label probabilities
in left-padded batches equal one-at-a-time ones; the text fallback; the order swap on a model's own
labels; a reward model's verdict from the score difference with a tie band."""
import json

import pytest
import torch

from tests.factories import ComparisonFactory
from training.judges.config import JudgeOptions
from training.judges.models import JudgeCall, JudgeVerdict
from training.judges.prompt_templates import template_load
from training.judges.services import judge_save, judging_job_create
from training.judges.verdicts import label_to_choice, orders_combine
from training.models import CheckpointKind
from training.runners.judge_backends import JudgeRequest
from training.runners.judging import run_judging
from training.runners.progress import Reporter
from training.services import checkpoint_register

RM_DIR = "checkpoints/tiny-rm-judge"
TEXTS = ["Blue.", "I would rather not talk about colours today, sorry.", "Green, like grass in spring after the rain.", "No."]


@pytest.fixture(scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def requests(template_ref="pairwise@1"):
    template = template_load(template_ref)
    prompt = [{"role": "user", "content": "What colour is the sky?"}]
    out = []
    for i, (first, second) in enumerate(zip(TEXTS, TEXTS[1:] + TEXTS[:1])):
        messages = [{"role": "user", "content": template.render(conversation=prompt, first=first, second=second)}]
        out.append(JudgeRequest(i + 1, "ab", None, messages, prompt, first, second))
    return out


@pytest.mark.django_db
def test_batched_label_probabilities_equal_one_at_a_time(tiny_checkpoints, one_torch_thread):
    from training.runners.judge_local import LocalLmBackend

    asked = requests()
    batched = LocalLmBackend(checkpoint=tiny_checkpoints["tiny-x"], options=JudgeOptions(batch_size=4, label_mass_min=0.0),
                             template=template_load("pairwise@1"))
    together = batched.answer(asked)
    alone = [batched.answer([r])[0] for r in asked]
    for one, many in zip(alone, together):
        p_one, p_many = json.loads(one.raw)["probabilities"], json.loads(many.raw)["probabilities"]
        assert p_one.keys() == {"A", "B", "tie"} and p_one == pytest.approx(p_many, rel=1e-3, abs=1e-7)
        assert one.status == "ok" and one.label == max(p_one, key=p_one.get) == many.label
        assert one.prompt_tokens == many.prompt_tokens > 50 and one.completion_tokens == 1


@pytest.mark.django_db
def test_a_model_that_puts_little_weight_on_the_labels_writes_an_answer_that_is_parsed(tiny_checkpoints, one_torch_thread):
    from training.runners.judge_local import LocalLmBackend

    backend = LocalLmBackend(checkpoint=tiny_checkpoints["tiny-x"], options=JudgeOptions(label_mass_min=1.0, max_tokens=4),
                             template=template_load("pairwise@1"))
    answers = backend.answer(requests()[:2])
    for answer in answers:  # a random model writes noise: parsed when it happens to say a label, else unparsed
        assert answer.status in ("ok", "unparsed") and "text" in json.loads(answer.raw)
        assert 1 <= answer.completion_tokens <= 4


@pytest.mark.django_db
def test_a_local_judge_job_combines_both_orders_of_its_own_labels(tiny_checkpoints, one_torch_thread):
    comparisons = ComparisonFactory.create_batch(3)
    judge, _ = judge_save(name="tiny", kind="local_lm", checkpoint="tiny-x", options={"label_mass_min": 0.0})
    job = judging_job_create(config={"judge": judge.ref, "comparison_ids": [c.pk for c in comparisons], "batch_size": 2})
    summary = run_judging(job, Reporter(job.pk))
    assert (summary["calls"], summary["ok"], summary["judged"]) == (6, 6, 3)
    for verdict in JudgeVerdict.objects.all():
        labels = {c.order: c.label for c in JudgeCall.objects.filter(job=job, comparison_id=verdict.comparison_id)}
        expected = orders_combine(label_to_choice(labels["ab"], "ab"), label_to_choice(labels["ba"], "ba"))
        assert (verdict.choice, verdict.inconsistent) == expected
    assert summary["votes"] == 3 and summary["inconsistent"] == JudgeVerdict.objects.filter(inconsistent=True).count()


@pytest.fixture
def reward_checkpoint(data_dir, model_store):
    directory = model_store.data_dir / RM_DIR
    if not (directory / "config.json").is_file():
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        torch.manual_seed(0)
        source = model_store.data_dir / "checkpoints" / "tiny-x"
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
        model.config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
    return checkpoint_register(name="tiny-rm-judge", kind=CheckpointKind.REWARD, weights_dir=RM_DIR)


@pytest.mark.django_db
def test_a_reward_model_judges_by_score_difference_with_a_tie_band(reward_checkpoint, one_torch_thread):
    from training.runners.judge_local import RewardModelBackend

    asked = requests()
    narrow = RewardModelBackend(checkpoint=reward_checkpoint, options=JudgeOptions(tie_band=0.0)).answer(asked)
    for answer in narrow:
        scores = json.loads(answer.raw)
        assert answer.label == ("A" if scores["score_first"] > scores["score_second"] else "B")
    wide = RewardModelBackend(checkpoint=reward_checkpoint, options=JudgeOptions(tie_band=1e6)).answer(asked)
    assert {a.label for a in wide} == {"tie"}


@pytest.mark.django_db
def test_judges_refuse_the_wrong_kind_of_checkpoint(tiny_checkpoints, reward_checkpoint):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="needs a reward model"):
        judge_save(name="rm", kind="reward_model", checkpoint="tiny-x")
    with pytest.raises(ValidationError, match="needs a policy"):
        judge_save(name="lm", kind="local_lm", checkpoint="tiny-rm-judge")
    judge, created = judge_save(name="rm", kind="reward_model", checkpoint="tiny-rm-judge", options={"tie_band": 0.5})
    assert created and judge.template == "" and judge.options["tie_band"] == 0.5
