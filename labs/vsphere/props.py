"""Reading properties through the PropertyCollector.

Reading a property as an attribute (``vm.snapshot``) costs a round trip per property,
and on the simulator crashes the request when the property is unset. Everything the
driver reads goes through ``RetrievePropertiesEx`` with explicit path sets instead;
unset properties are simply absent from the returned dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pyVmomi import vim, vmodl

PC = vmodl.query.PropertyCollector

_PAGE = 500


def _collect(session: Any, specs: list) -> list:
    collector = session.content.propertyCollector
    result = collector.RetrievePropertiesEx(specs, PC.RetrieveOptions(maxObjects=_PAGE))
    objects = []
    while result is not None:
        objects.extend(result.objects or ())
        if not result.token:
            break
        result = collector.ContinueRetrievePropertiesEx(result.token)
    return objects


def _as_dict(content: Any) -> dict[str, Any]:
    return {prop.name: prop.val for prop in content.propSet or ()}


def read(session: Any, obj: Any, paths: Sequence[str]) -> dict[str, Any]:
    """Properties of one object: {path: value}; unset ones are missing."""
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=obj, skip=False)],
        propSet=[PC.PropertySpec(type=type(obj), pathSet=list(paths), all=False)],
    )
    objects = _collect(session, [spec])
    return _as_dict(objects[0]) if objects else {}


def read_many(session: Any, objs: Iterable[Any], paths: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Properties of several objects (of any types sharing the paths), keyed by moref."""
    objs = list(objs)
    if not objs:
        return {}
    types = {type(obj) for obj in objs}
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=obj, skip=False) for obj in objs],
        propSet=[PC.PropertySpec(type=t, pathSet=list(paths), all=False) for t in types],
    )
    return {content.obj._moId: _as_dict(content) for content in _collect(session, [spec])}


def read_view(
    session: Any,
    container: Any,
    paths_by_type: dict[type, Sequence[str]],
    *,
    recursive: bool = True,
) -> list[tuple[Any, dict[str, Any]]]:
    """Objects of the given types inside a container (folder, datacenter, cluster...)."""
    view = session.content.viewManager.CreateContainerView(container, list(paths_by_type), recursive)
    try:
        traversal = PC.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)
        spec = PC.FilterSpec(
            objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[traversal])],
            propSet=[PC.PropertySpec(type=t, pathSet=list(p), all=False) for t, p in paths_by_type.items()],
        )
        return [(content.obj, _as_dict(content)) for content in _collect(session, [spec])]
    finally:
        view.DestroyView()


def ancestry(session: Any, obj: Any) -> list[tuple[Any, str]]:
    """The object and its parents up to (not including) the root folder: [(obj, name), ...].

    One round trip: a traversal that follows ``parent`` recursively.
    """
    up = PC.TraversalSpec(
        name="up", type=vim.ManagedEntity, path="parent", skip=False, selectSet=[PC.SelectionSpec(name="up")]
    )
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=obj, skip=False, selectSet=[up])],
        propSet=[PC.PropertySpec(type=vim.ManagedEntity, pathSet=["name", "parent"], all=False)],
    )
    found = {content.obj._moId: (content.obj, _as_dict(content)) for content in _collect(session, [spec])}
    chain: list[tuple[Any, str]] = []
    current = obj._moId
    root = session.content.rootFolder._moId
    while current in found and current != root:
        entity, values = found[current]
        chain.append((entity, values.get("name", "")))
        parent = values.get("parent")
        current = parent._moId if parent is not None else None
    return chain


def inventory_path(session: Any, obj: Any) -> str:
    """'/DC0/vm/Nestlab Templates/esxi-01' for an object (names are vCenter's, escaped)."""
    names = [name for _, name in reversed(ancestry(session, obj))]
    return "/" + "/".join(names)
