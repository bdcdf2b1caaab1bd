"""Evaluations on eval sets (issue 17): candidates against a baseline on an eval set's prompts,
their statistics (``stats``) and reports. The eval sets themselves live in ``feedback.evalsets``
(feedback owns prompts)."""
