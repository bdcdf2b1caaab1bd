"""Worker-side runners, one per job kind. Only this package imports torch and transformers,
and only inside the runner functions, so importing the registry stays cheap."""


def _generation(job, reporter):
    from .generation import run_generation

    return run_generation(job, reporter)


RUNNERS = {"generation": _generation}
