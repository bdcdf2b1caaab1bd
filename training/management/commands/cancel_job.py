"""manage.py cancel_job ID [ID ...] [--if-queued]"""
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Cancel jobs by id: a queued job is cancelled at once, a running one stops at its next batch "
            "boundary; --if-queued leaves a job that has started alone. Finished jobs are left as they are.")

    def add_arguments(self, parser):
        parser.add_argument("job_ids", nargs="+", type=int, metavar="ID")
        parser.add_argument("--if-queued", action="store_true",
                            help="cancel only jobs that have not started yet; leave running ones alone")

    def handle(self, *args, job_ids, if_queued, **options):
        from training.models import Job, JobStatus
        from training.services import job_cancel

        jobs = Job.objects.in_bulk(job_ids)
        missing = [str(pk) for pk in job_ids if pk not in jobs]
        for pk in dict.fromkeys(job_ids):
            if pk not in jobs:
                continue
            before = jobs[pk].status
            job = job_cancel(job=jobs[pk], queued_only=if_queued)
            label = f"{job.get_kind_display()} job {job.pk}"
            if before == JobStatus.QUEUED and job.status == JobStatus.CANCELLED:
                self.stdout.write(f"{label}: cancelled (it had not started)")
            elif job.status == JobStatus.RUNNING:
                self.stdout.write(f"{label}: running, left alone (--if-queued)" if if_queued
                                  else f"{label}: running, asked to stop at its next batch")
            else:
                self.stdout.write(f"{label}: already {job.status}, left as it is")
        if missing:
            raise CommandError(f"no job with id {', '.join(missing)}")
