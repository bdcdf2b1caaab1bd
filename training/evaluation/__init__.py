"""Evaluations on eval sets (issue 17 item 2): candidates against a baseline on an eval set's
prompts. The eval sets themselves live in ``feedback.evalsets`` (feedback owns prompts)."""
