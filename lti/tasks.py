"""The LTI tool's scheduled work."""

from celery import shared_task

from lti import services


@shared_task(name="lti.roster_sync_all")
def roster_sync_all() -> int:
    """Every LMS-linked course's roster follows the LMS's (CELERY_BEAT_SCHEDULE)."""
    return services.roster_sync_all()
