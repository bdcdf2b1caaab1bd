"""LoRA settings shared by the training runners (peft imported lazily).

Every run kind's config carries ``lora``, ``lora_r``, ``lora_alpha`` and ``lora_dropout``
(``training.config.RewardConfig``, ``training.policy_config``). LoRA (Hu et al. 2021) goes on every
linear layer of the transformer (peft's ``"all-linear"``, which leaves the output head alone).
"""
from __future__ import annotations


def lora_config(config, *, task_type: str):
    """peft ``LoraConfig`` from our config's ``lora_r``/``lora_alpha``/``lora_dropout``, on all linear layers.

    Args:
        config: a run config with the LoRA fields.
        task_type: peft's task, ``"CAUSAL_LM"`` for policies, ``"SEQ_CLS"`` for reward models (peft
            then adds ``classifier``/``score`` to ``modules_to_save``, so a new reward head trains in full).
    """
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType(task_type), r=config.lora_r, lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout, target_modules="all-linear",
    )


def disable_dropout(config) -> bool:
    """The value for TRL's ``disable_dropout`` argument.

    TRL zeroes every ``nn.Dropout`` in the model when it is set (TRL 1.16 ``disable_dropout_in_model``),
    and that includes LoRA's own dropout; so it is off for a LoRA run that asks for dropout, on otherwise.
    """
    return not (config.lora and config.lora_dropout > 0)
