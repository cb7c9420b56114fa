"""Nestlab's project package: settings, routing, the Celery app, roles and realtime helpers.

The Celery app is loaded by ``PortalConfig.ready`` (and by ``celery -A portal``), not
here: importing this package must not set DJANGO_SETTINGS_MODULE as a side effect, or a
small tool such as ``python -m portal.embedded_redis`` would pass it on to its children.
"""
