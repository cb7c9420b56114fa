"""Queries whose SQL is built once per thread and run again with other values.

Every API poll makes the same few reads (the token and its person, the person's roles, the
object polled). Measured in bench/request_cost.py, Django building and compiling those
querysets cost more CPU than PostgreSQL answering them: about half of a poll. A
``CompiledQuery`` builds its queryset once, with stand-in values, through the same code
that builds it everywhere else (so a rule such as who may see an operation is still
written once), keeps the SQL and where each stand-in went in its parameters, and from
then on only executes that SQL with the real values and turns the rows into model
instances as Django's own iterator does (converters, ``select_related`` objects,
annotations).

Only for querysets whose shape does not depend on the values: each value must be a plain
parameter (an id, a key) that shows up in the compiled parameters as itself, or not at
all. That is checked when the SQL is built; a queryset that changes a value on its way
(a LIKE pattern) or writes it into the SQL text is refused with ``ValueError`` rather than
run with a wrong parameter.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import ModelIterable, get_related_populators

# Stand-ins no real value takes: ids are positive, keys are printable. Within a 32-bit
# integer's range, or Django would see no row can match and compile nothing.
_STAND_INS: dict[type, Callable[[int], Any]] = {
    int: lambda n: -2_000_000_000 - n,
    str: lambda n: f"\x1fnestlab-stand-in-{n}\x1f",
}


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass
class _Compiled:
    sql: str | None  # None: the queryset can match nothing (e.g. ``.none()``)
    params: list[Any]
    slots: list[int | None]  # for each parameter: the index of the value it is, or None (a constant)
    compiler: Any
    converters: Any
    model_fields: tuple[int, int] | None
    init_list: list[str]
    related_populators: list[Any]
    annotation_col_map: dict[str, int]


class CompiledQuery:
    """``build(*values) -> QuerySet``, compiled once per thread and database.

    ``kinds`` are the types of the values (``int`` or ``str``), in ``build``'s order."""

    def __init__(self, build: Callable[..., QuerySet], *kinds: type) -> None:
        unknown = [kind for kind in kinds if kind not in _STAND_INS]
        if unknown:
            raise ValueError(f"CompiledQuery takes int and str values, not {unknown}.")
        self._build = build
        self._kinds = kinds
        self._local = threading.local()

    def instances(self, *values: Any, using: str = "default") -> list[Model]:
        """The model instances the queryset gives for these values."""
        compiled = self._compiled(using)
        rows = self._rows(compiled, values, using)
        if compiled.sql is None:
            return []
        if compiled.model_fields is None:
            raise ValueError("instances() needs a queryset of model instances; use rows() for values_list().")
        start, end = compiled.model_fields
        model = compiled.compiler.klass_info["model"]
        found = []
        for row in rows:
            instance = model.from_db(using, compiled.init_list, row[start:end])
            for populator in compiled.related_populators:
                populator.populate(row, instance)
            for name, position in compiled.annotation_col_map.items():
                setattr(instance, name, row[position])
            found.append(instance)
        return found

    def first(self, *values: Any, using: str = "default") -> Model | None:
        found = self.instances(*values, using=using)
        return found[0] if found else None

    def rows(self, *values: Any, using: str = "default") -> list[tuple]:
        """The selected columns as tuples, after Django's converters (for ``values_list()``)."""
        return self._rows(self._compiled(using), values, using)

    def _rows(self, compiled: _Compiled, values: tuple, using: str) -> list[tuple]:
        if len(values) != len(self._kinds):
            raise TypeError(f"Expected {len(self._kinds)} values, got {len(values)}.")
        if compiled.sql is None:
            return []
        if any(isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX for value in values):
            # No id is that large; SQLite would raise OverflowError and PostgreSQL compare numerics.
            return []
        params = [compiled.params[i] if slot is None else values[slot] for i, slot in enumerate(compiled.slots)]
        with connections[using].cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        columns = compiled.compiler.col_count
        rows = [row[:columns] for row in rows]
        if compiled.converters:
            rows = list(compiled.compiler.apply_converters(rows, compiled.converters))
        return [tuple(row) for row in rows]

    def _compiled(self, using: str) -> _Compiled:
        cache = self._local.__dict__.setdefault("by_alias", {})
        compiled = cache.get(using)
        if compiled is None:
            compiled = cache[using] = self._compile(using)
        return compiled

    def _compile(self, using: str) -> _Compiled:
        counter = itertools.count()
        stand_ins = [_STAND_INS[kind](next(counter)) for kind in self._kinds]
        queryset = self._build(*stand_ins)
        compiler = queryset.query.get_compiler(using=using)
        if queryset.query.is_empty():  # .none(): nothing to ask the database
            return _Compiled(None, [], [], compiler, None, None, [], [], {})
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            raise ValueError("Django found that this query matches nothing for the stand-in values.") from None
        slots = [next((i for i, stand_in in enumerate(stand_ins) if param == stand_in), None) for param in params]
        # A value may go unused (an admin's query names no person); one that reaches the SQL
        # changed (inside a LIKE pattern, written into the text) cannot be swapped later.
        hidden = [
            i
            for i, stand_in in enumerate(stand_ins)
            if str(stand_in) in sql
            or any(str(stand_in) in str(param) for param, slot in zip(params, slots, strict=True) if slot is None)
        ]
        if hidden:
            raise ValueError(
                f"Values {hidden} of this query reach its SQL other than as parameters of their own: "
                "it cannot be compiled once and run with other values."
            )
        fields = [column[0] for column in compiler.select[: compiler.col_count]]
        klass_info = compiler.klass_info
        model_fields, init_list, populators = None, [], []
        if klass_info is not None and queryset._iterable_class is ModelIterable:
            select_fields = klass_info["select_fields"]
            model_fields = (select_fields[0], select_fields[-1] + 1)
            init_list = [column[0].target.attname for column in compiler.select[model_fields[0] : model_fields[1]]]
            populators = get_related_populators(klass_info, compiler.select, using)
        return _Compiled(
            sql=sql,
            params=list(params),
            slots=slots,
            compiler=compiler,
            converters=compiler.get_converters(fields),
            model_fields=model_fields,
            init_list=init_list,
            related_populators=populators,
            annotation_col_map=compiler.annotation_col_map or {},
        )
