"""Judges that run here: a causal LM from the registry (verdict from next-token probabilities) and
a reward model (verdict from the score difference). torch and transformers are imported here only.

Local LM. Each request's chat (the rendered template as one user turn) gets the model's chat
template with the generation prompt; the prompts are sorted by length and run in left-padded
batches of ``batch_size``, one forward pass each, reading only the last position's logits. The
probability of a label is the softmax probability of its first token, summed over its spellings
(``"A"`` and ``" A"``; ``"tie"``, ``" tie"``, ``"Tie"``, ``" Tie"``); the verdict is the most
probable allowed label. When all labels together get less than ``label_mass_min`` of the
probability (the model wants to say something else first), the model writes up to
``max_tokens`` tokens greedily and that text is parsed (``verdicts.verdict_parse``).
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence

import torch

from training.judges.config import JudgeOptions
from training.judges.prompt_templates import PromptTemplate
from training.judges.verdicts import score_label

from .judge_backends import FAILED, OK, JudgeAnswer, JudgeRequest, text_answer
from .loading import checkpoint_policy_load
from .rewards import reward_model_load, rewards_compute
from .scoring import scoring_ids

SPELLINGS = {"A": ("A", " A"), "B": ("B", " B"), "tie": ("tie", " tie", "Tie", " Tie")}


def label_token_ids(tokenizer, labels: Sequence[str]) -> dict[str, list[int]]:
    """Each label's first-token ids over its spellings. Raises ValueError when two labels share one."""
    ids = {label: sorted({tokenizer.encode(s, add_special_tokens=False)[0] for s in SPELLINGS[label]}) for label in labels}
    seen: dict[int, str] = {}
    for label, tokens in ids.items():
        for token in tokens:
            if token in seen:
                raise ValueError(f"labels {seen[token]!r} and {label!r} start with the same token")
            seen[token] = label
    return ids


def last_logits(model, batch: list[list[int]], pad_id: int) -> torch.Tensor:
    """Next-token logits after each prompt: one left-padded forward pass over ``batch`` (B lists
    of token ids). Positions count from each prompt's first real token, as without padding.
    Returns: float32 tensor (B, vocab)."""
    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, width - len(ids):] = torch.tensor(ids)
        mask[row, width - len(ids):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    device = model.device
    with torch.inference_mode():
        out = model(input_ids=input_ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                    logits_to_keep=1)
    return out.logits[:, -1, :].float()


class LocalLmBackend:
    """A registered causal LM as a generative judge (see the module docstring)."""

    def __init__(self, *, checkpoint, options: JudgeOptions, template: PromptTemplate):
        self.policy = checkpoint_policy_load(checkpoint)
        self.options, self.labels = options, template.labels
        self.label_ids = label_token_ids(self.policy.tokenizer, self.labels)

    def encode(self, requests: Sequence[JudgeRequest]) -> list[list[int]]:
        """Token ids of each request's chat with the generation prompt, cut to the last ``max_length``."""
        tokenizer = self.policy.tokenizer
        texts = [tokenizer.apply_chat_template(r.messages, tokenize=False, add_generation_prompt=True) for r in requests]
        return [ids[-self.options.max_length:] for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def answer(self, requests: Sequence[JudgeRequest]) -> list[JudgeAnswer]:
        started = time.perf_counter()
        encoded = self.encode(requests)
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        probabilities: list[dict[str, float]] = [{} for _ in encoded]
        size = self.options.batch_size
        for start in range(0, len(order), size):
            rows = order[start:start + size]
            probs = torch.softmax(last_logits(self.policy.model, [encoded[i] for i in rows], self.policy.tokenizer.pad_token_id), -1)
            for row, i in enumerate(rows):
                probabilities[i] = {label: float(probs[row, ids].sum()) for label, ids in self.label_ids.items()}
        fallback = [i for i, p in enumerate(probabilities) if sum(p.values()) < self.options.label_mass_min]
        texts = self._write(fallback, encoded)
        share = (time.perf_counter() - started) / max(1, len(requests))
        answers = []
        for i, p in enumerate(probabilities):
            raw = {"probabilities": {k: round(v, 6) for k, v in p.items()}}
            if i in texts:
                text, new_tokens = texts[i]
                answer = text_answer(text, self.labels, prompt_tokens=len(encoded[i]), completion_tokens=new_tokens, seconds=share)
                answers.append(JudgeAnswer(answer.status, answer.label, json.dumps({**raw, "text": text}), "",
                                           answer.prompt_tokens, answer.completion_tokens, share))
            else:
                label = max(p, key=p.get)
                answers.append(JudgeAnswer(OK, label, json.dumps(raw), "", len(encoded[i]), 1, share))
        return answers

    def _write(self, rows: list[int], encoded: list[list[int]]) -> dict[int, tuple[str, int]]:
        """Greedy answers of up to ``max_tokens`` tokens for ``rows``: ``{row: (text, new tokens)}``."""
        tokenizer, model, out = self.policy.tokenizer, self.policy.model, {}
        for start in range(0, len(rows), self.options.batch_size):
            chunk = rows[start:start + self.options.batch_size]
            batch = tokenizer.pad({"input_ids": [encoded[i] for i in chunk]}, return_tensors="pt").to(model.device)
            with torch.inference_mode():
                generated = model.generate(**batch, max_new_tokens=self.options.max_tokens, do_sample=False,
                                           pad_token_id=tokenizer.pad_token_id, eos_token_id=self.policy.eos_token_ids)
            for row, tokens in zip(chunk, generated[:, batch["input_ids"].shape[1]:].tolist()):
                kept = [t for t in tokens if t != tokenizer.pad_token_id]
                out[row] = (tokenizer.decode(kept, skip_special_tokens=True), len(kept))
        return out

    def close(self) -> None:
        pass


class RewardModelBackend:
    """A registered reward model as a judge: each completion is scored as in reward training
    (``scoring.scoring_ids``), and the label comes from the difference (``verdicts.score_label``)."""

    def __init__(self, *, checkpoint, options: JudgeOptions):
        self.model, self.tokenizer = reward_model_load(checkpoint.location)
        self.options = options

    def answer(self, requests: Sequence[JudgeRequest]) -> list[JudgeAnswer]:
        started = time.perf_counter()
        texts: dict[tuple[int, str], list[int]] = {}
        for r in requests:
            for text in (r.first, r.second):
                key = (r.comparison_id, text)
                if key not in texts:
                    texts[key] = scoring_ids(self.tokenizer, r.prompt_messages, text, self.options.max_length)[0]
        keys = list(texts)
        try:
            rewards = rewards_compute(self.model, self.tokenizer.pad_token_id, [texts[k] for k in keys],
                                      batch_size=self.options.batch_size)
        except RuntimeError as error:  # out of memory and the like: every call of the batch fails
            return [JudgeAnswer(FAILED, error=f"{type(error).__name__}: {error}"[:500]) for _ in requests]
        score = dict(zip(keys, rewards))
        share = (time.perf_counter() - started) / max(1, len(requests))
        answers = []
        for r in requests:
            first, second = score[(r.comparison_id, r.first)], score[(r.comparison_id, r.second)]
            raw = json.dumps({"score_first": round(first, 6), "score_second": round(second, 6), "tie_band": self.options.tie_band})
            tokens = len(texts[(r.comparison_id, r.first)]) + len(texts[(r.comparison_id, r.second)])
            answers.append(JudgeAnswer(OK, score_label(first, second, self.options.tie_band), raw, "", tokens, 0, share))
        return answers

    def close(self) -> None:
        pass
