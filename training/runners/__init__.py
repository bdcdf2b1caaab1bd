"""Worker-side runners, one per job kind. Only this package imports torch and transformers,
and only inside the runner functions, so importing the registry stays cheap."""


def _generation(job, reporter):
    if (job.config or {}).get("backend") == "server":  # no torch on this path
        from .generation_server import run_server_generation

        return run_server_generation(job, reporter)
    from .generation import run_generation

    return run_generation(job, reporter)


def _reward(job, reporter):
    from .reward import run_reward

    return run_reward(job, reporter)


def _scoring(job, reporter):
    from .scoring import run_scoring

    return run_scoring(job, reporter)


RUNNERS = {"generation": _generation, "reward": _reward, "scoring": _scoring}


def _dpo(job, reporter):
    from .dpo import run_dpo

    return run_dpo(job, reporter)


def _sft(job, reporter):
    from .sft import run_sft

    return run_sft(job, reporter)


RUNNERS.update({"dpo": _dpo, "sft": _sft})


def _rl(job, reporter):
    from .rl import run_rl

    return run_rl(job, reporter)


RUNNERS["rl"] = _rl


def _cai(job, reporter):
    from .cai import run_cai

    return run_cai(job, reporter)


RUNNERS["cai"] = _cai


def _judging(job, reporter):
    from .judging import run_judging

    return run_judging(job, reporter)


RUNNERS["judging"] = _judging
