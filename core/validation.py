"""Saving a row through its bounds: the one way services write a model they built or changed."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models


def save_valid(instance: models.Model, *, trusted: Iterable[str] = (), validate_constraints: bool = True) -> None:
    """Check the row against every bound its model declares (``full_clean``: field validators,
    ``clean``, unique constraints), then save it. Bounds live in the models, so a service that
    writes through this refuses what the admin form refuses, in the same words
    (``ValidationError``), and nothing is saved.

    ``trusted``: related fields set from rows the caller holds, whose existence checks (a query
    each) would only read them again; the database's foreign keys still guard them.
    ``validate_constraints=False`` for a row whose constraints cannot be broken by what the caller
    sets (each is tested by a query); the database still enforces them."""
    instance.full_clean(exclude=list(trusted) or None, validate_constraints=validate_constraints)
    instance.save()
