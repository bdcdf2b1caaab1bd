"""Background tasks of the feedback app (django-tasks, db backend). Thin: take an id, call a service."""
from django_tasks import task


@task()
def export_execute(export_id: int) -> str:
    """Write export ``export_id`` (``feedback.exports.services.export_run``); returns its final status."""
    from .exports.services import export_run

    return export_run(export_id=export_id).status


@task()
def import_execute(job_id: int) -> str:
    """Run import job ``job_id`` (``feedback.import_jobs.import_job_run``); returns its final status."""
    from .import_jobs import import_job_run

    return import_job_run(job_id=job_id).status


@task()
def quality_report_execute(campaign_id: int | None) -> str:
    """Recompute the quality report of campaign ``campaign_id`` (None: all votes) with
    ``feedback.quality.services.quality_report_compute``; returns its final status."""
    from .quality.services import quality_report_compute

    return quality_report_compute(campaign=campaign_id).status


@task()
def identity_rescan_execute(scan_id: int) -> str:
    """Re-scan every comparison for identity leaks (``feedback.identity.services.identity_rescan_run``,
    scan row ``scan_id``); returns its final status."""
    from .identity.services import identity_rescan_run

    return identity_rescan_run(scan_id=scan_id).status


@task()
def personal_data_scan_execute(scan_id: int) -> str:
    """Scan every row for personal data (``feedback.governance.scan.personal_data_scan_run``,
    scan row ``scan_id``); returns its final status."""
    from .governance.scan import personal_data_scan_run

    return personal_data_scan_run(scan_id=scan_id).status
