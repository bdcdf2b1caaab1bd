"""Evaluation on realistic queries (issue 17): eval runs, their statistics and reports, the loop's gate."""
