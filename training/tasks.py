"""Background tasks (django-tasks, db backend). Thin: take an id, hand it to the supervisor."""
from django_tasks import task


@task()
def job_execute(job_id: int) -> str:
    """Run job ``job_id`` in a child process and record its outcome; returns the final status."""
    from .supervisor import job_supervise

    return job_supervise(job_id=job_id)
