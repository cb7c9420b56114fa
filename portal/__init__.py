"""Nestlab's project package: settings, routing, the Celery app, roles and realtime helpers."""

from portal.celery import app as celery_app

__all__ = ["celery_app"]
