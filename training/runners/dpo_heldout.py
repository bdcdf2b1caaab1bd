"""DPO's held-out implicit-reward figures over pairs, with ties counted apart.

TRL's ``eval_rewards/accuracies`` is a mean of per-batch means of ``chosen > rejected`` and has no
tie figure. After training, ``implicit_reward_outcomes`` scores every held-out pair once more:
the implicit reward of a response is ``β·(log π(y|x) - log π_ref(y|x))`` (Rafailov et al. 2023,
eq. 5), log-probabilities summed over the response's tokens as TRL's ``sigmoid`` loss sums them;
the reference is the frozen copy (``trainer.ref_model``) or, with LoRA, the policy with its
adapter disabled. ``pair_tokens.pair_outcomes`` then gives strict wins and ties over pairs.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from .pair_tokens import PairIds, pair_outcomes


def response_logps(model, pairs: list[PairIds], *, pad_token_id: int, batch_size: int) -> np.ndarray:
    """``(N, 2)`` summed log-probabilities of each pair's chosen and rejected response tokens given
    its prompt, from a causal LM (sequences padded on the right; float64)."""
    device = next(model.parameters()).device
    sequences = [(pair.prompt, response) for pair in pairs for response in (pair.chosen, pair.rejected)]
    out: list[float] = []
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start:start + batch_size]
        width = max(len(prompt) + len(response) for prompt, response in batch)
        input_ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        response_mask = torch.zeros((len(batch), width), dtype=torch.bool)
        for row, (prompt, response) in enumerate(batch):
            ids = prompt + response
            input_ids[row, :len(ids)] = torch.tensor(ids)
            attention[row, :len(ids)] = 1
            response_mask[row, len(prompt):len(ids)] = True
        with torch.inference_mode():
            logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device), use_cache=False).logits
            logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            token_logps = logps.gather(-1, input_ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
            sums = (token_logps * response_mask[:, 1:].to(device)).sum(dim=1)
        out.extend(float(value) for value in sums.cpu())
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def implicit_reward_outcomes(trainer, pairs: list[PairIds], *, beta: float, pad_token_id: int, batch_size: int) -> dict:
    """Held-out ``accuracy`` (implicit reward strictly higher for chosen), ``tie_rate`` (equal) and
    ``n`` over ``pairs``, with the trainer's model and reference as they are now."""
    model = trainer.model
    was_training = model.training
    model.eval()
    try:
        policy = response_logps(model, pairs, pad_token_id=pad_token_id, batch_size=batch_size)
        if trainer.ref_model is not None:
            reference = response_logps(trainer.ref_model, pairs, pad_token_id=pad_token_id, batch_size=batch_size)
        else:
            disabled = model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()
            with disabled:
                reference = response_logps(model, pairs, pad_token_id=pad_token_id, batch_size=batch_size)
    finally:
        model.train(was_training)
    return pair_outcomes(beta * (policy - reference))
