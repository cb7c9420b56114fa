"""Saving a row through its bounds: the one way services write a model they built or changed."""

from __future__ import annotations

from django.db import models


def save_valid(instance: models.Model) -> None:
    """Check the row against every bound its model declares (``full_clean``: field validators,
    ``clean``, unique constraints), then save it. Bounds live in the models, so a service that
    writes through this refuses what the admin form refuses, in the same words
    (``ValidationError``), and nothing is saved."""
    instance.full_clean()
    instance.save()
