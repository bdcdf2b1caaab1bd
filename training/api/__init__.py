"""REST API for checkpoints and jobs (admins holding ``training.run_jobs``), mounted under /api/."""
