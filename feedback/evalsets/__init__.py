"""Eval sets: named, versioned, frozen sets of real queries that evaluations run on and that never
enter a training snapshot (``feedback.evalsets.normalise`` says how prompts are matched)."""
