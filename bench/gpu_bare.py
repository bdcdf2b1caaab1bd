"""The bare scripts ``bench/gpu_check.py`` measures the platform against: what a competent user
writes with TRL and transformers alone, on the same rows, base and settings as the platform's run.
No Django, no database. Each function takes a spec (plain values) and returns its figures; the
caller measures GPU memory around it.

Settings shared with the platform's runners on CUDA (``training.runners.policy_training``,
``reward.trl_reward_config``): bf16 autocast (fp16 without bf16), activation checkpointing, a LoRA
base loaded in bf16 and a full fine-tune's in float32, pinned memory, no dataloader workers,
nothing saved by the trainer. On CPU (``--smoke``): float32, no checkpointing, ``use_cpu``.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path


def precision(cuda: bool) -> dict:
    """The trainer arguments that depend on the device, as the platform sets them."""
    import torch

    bf16 = cuda and torch.cuda.is_bf16_supported()
    return {"bf16": bf16, "fp16": cuda and not bf16, "activation_checkpointing": cuda,
            "dataloader_pin_memory": cuda, "use_cpu": not cuda, "dataloader_num_workers": 0}


def base_dtype(cuda: bool, lora: bool) -> str:
    """The dtype a run loads its base in: bf16 for LoRA on a bf16 GPU, else float32 (as the runners do)."""
    import torch

    return "bfloat16" if cuda and lora and torch.cuda.is_bf16_supported() else "float32"


def rows(path: str, columns: tuple[str, ...]) -> list[dict]:
    """The JSON lines of a snapshot file, keeping ``columns``."""
    lines = Path(path).read_text().splitlines()
    return [{c: json.loads(line)[c] for c in columns} for line in lines if line.strip()]


def _common(spec: dict, output_dir: str) -> dict:
    return dict(
        output_dir=output_dir, report_to="none", save_strategy="no", disable_tqdm=True,
        learning_rate=spec["learning_rate"], max_steps=spec["steps"], per_device_train_batch_size=spec["batch_size"],
        logging_steps=spec["logging_steps"], seed=spec["seed"], **precision(spec["cuda"]),
    )


def _figures(trainer, result) -> dict:
    return {"samples_per_s": result.metrics["train_samples_per_second"], "train_s": result.metrics["train_runtime"],
            "steps": trainer.state.global_step, "train_rows": len(trainer.train_dataset)}


def reward(spec: dict) -> dict:
    """TRL ``RewardTrainer`` on the snapshot's rows (full fine-tune), evaluated as the platform's run is."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    columns = ("prompt", "chosen", "rejected", "margin")
    train, held_out = (Dataset.from_list(rows(spec[key], columns)) for key in ("train_path", "eval_path"))
    with tempfile.TemporaryDirectory() as output_dir:
        args = RewardConfig(
            **_common(spec, output_dir), per_device_eval_batch_size=spec["batch_size"], max_length=spec["max_length"],
            eval_strategy="steps", eval_steps=spec["steps"], lr_scheduler_type="cosine", warmup_steps=0.05,
            model_init_kwargs={"dtype": base_dtype(spec["cuda"], False)},
        )
        trainer = RewardTrainer(model=spec["location"], args=args, train_dataset=train, eval_dataset=held_out,
                                processing_class=AutoTokenizer.from_pretrained(spec["location"]))
        return _figures(trainer, trainer.train())


def dpo(spec: dict) -> dict:
    """TRL ``DPOTrainer`` on the snapshot's rows, with the platform's LoRA (``spec["lora"]``) or a full
    fine-tune against a frozen copy of the base."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    columns = ("prompt", "chosen", "rejected")
    train, held_out = (Dataset.from_list(rows(spec[key], columns)) for key in ("train_path", "eval_path"))
    lora = spec["lora"]
    with tempfile.TemporaryDirectory() as output_dir:
        args = DPOConfig(
            **_common(spec, output_dir), per_device_eval_batch_size=spec["batch_size"], max_length=spec["max_length"],
            eval_strategy="steps", eval_steps=spec["steps"], beta=spec["beta"],
            disable_dropout=not (lora and lora["lora_dropout"] > 0),
            model_init_kwargs={"dtype": base_dtype(spec["cuda"], bool(lora))},
        )
        trainer = DPOTrainer(
            model=spec["location"], args=args, train_dataset=train, eval_dataset=held_out,
            processing_class=AutoTokenizer.from_pretrained(spec["location"]),
            peft_config=LoraConfig(task_type="CAUSAL_LM", target_modules="all-linear", **lora) if lora else None,
        )
        return _figures(trainer, trainer.train())


def rloo(spec: dict) -> dict:
    """TRL ``RLOOTrainer`` on the platform's prompts, the reward checkpoint passed as a model (TRL's
    own reward-model path), the platform's LoRA."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RLOOConfig, RLOOTrainer

    dtype = torch.bfloat16 if spec["cuda"] and torch.cuda.is_bf16_supported() else torch.float32
    reward_model = AutoModelForSequenceClassification.from_pretrained(spec["reward_location"], dtype=dtype)
    lora = spec["lora"]
    with tempfile.TemporaryDirectory() as output_dir:
        args = RLOOConfig(
            **_common(spec, output_dir), num_generations=spec["num_generations"],
            max_completion_length=spec["max_completion_length"], temperature=1.0, beta=spec["beta"],
            disable_dropout=not lora["lora_dropout"] > 0, model_init_kwargs={"dtype": base_dtype(spec["cuda"], True)},
        )
        trainer = RLOOTrainer(
            model=spec["location"], reward_funcs=reward_model,
            reward_processing_classes=AutoTokenizer.from_pretrained(spec["reward_location"]), args=args,
            train_dataset=Dataset.from_list([{"prompt": prompt} for prompt in spec["prompts"]]),
            processing_class=AutoTokenizer.from_pretrained(spec["location"], padding_side="left"),
            peft_config=LoraConfig(task_type="CAUSAL_LM", target_modules="all-linear", **lora),
        )
        figures = _figures(trainer, trainer.train())
        figures["train_rows"] = len(spec["prompts"])
        return figures


def generate(spec: dict) -> dict:
    """Greedy ``model.generate`` over ``spec["conversations"]`` in batches of ``spec["batch_size"]``
    (chat template, left padding, bf16 on CUDA); tokens counted up to the first end-of-turn token.
    Tokens per second over the loop (tokenise, generate, decode), the model already loaded."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = spec["cuda"]
    tokenizer = AutoTokenizer.from_pretrained(spec["location"], padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(spec["location"], dtype=torch.bfloat16 if cuda else torch.float32)
    model.to("cuda" if cuda else "cpu").eval()
    stops = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")}
    generation_eos = model.generation_config.eos_token_id
    stops.update(generation_eos if isinstance(generation_eos, list) else [generation_eos])
    stops = sorted(s for s in stops if s is not None)
    conversations, size = spec["conversations"], spec["batch_size"]
    started, texts, new_tokens = time.perf_counter(), [], 0
    for start in range(0, len(conversations), size):
        batch = conversations[start:start + size]
        prompts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in batch]
        encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            output = model.generate(**encoded, max_new_tokens=spec["max_new_tokens"], do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id, eos_token_id=stops)
        for row in output[:, encoded["input_ids"].shape[1]:].tolist():
            end = next((i for i, token in enumerate(row) if token in stops), len(row))
            new_tokens += end
            texts.append(tokenizer.decode(row[:end], skip_special_tokens=True))
    seconds = time.perf_counter() - started
    return {"tokens_per_s": new_tokens / seconds, "new_tokens": new_tokens, "seconds": seconds, "texts": texts}
