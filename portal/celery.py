"""The Celery application: every vCenter job runs here, on Redis (embedded or not)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("nestlab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
