"""VM folders: one per student lab."""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from . import props, refs
from .errors import AlreadyExists, InvalidArgument, InvalidState
from .tasks import wait_for_task
from .types import ProgressCallback

MAX_NAME = 80


def vm_folder(session: Any, parent_ref: str) -> Any:
    parent = refs.resolve(session, parent_ref, vim.Folder, vim.Datacenter)
    if isinstance(parent, vim.Datacenter):
        return props.read(session, parent, ["vmFolder"])["vmFolder"]
    return parent


def _child_named(session: Any, folder: Any, name: str) -> Any | None:
    for obj, values in props.read_view(session, folder, {vim.ManagedEntity: ["name"]}, recursive=False):
        if values.get("name") == name:
            return obj
    return None


def check_name(name: str, what: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidArgument(f"A {what} needs a name.")
    if len(name) > MAX_NAME:
        raise InvalidArgument(f"The {what} name '{name[:20]}...' is longer than {MAX_NAME} characters.")
    return name


def ensure_folder(session: Any, parent_ref: str, name: str) -> str:
    """The moref of folder ``name`` under ``parent_ref`` (a folder or datacenter), made if missing."""
    name = check_name(name, "folder")
    parent = vm_folder(session, parent_ref)
    for _ in range(2):
        existing = _child_named(session, parent, name)
        if isinstance(existing, vim.Folder):
            return existing._moId
        if existing is not None:
            raise AlreadyExists(f"'{name}' under {parent_ref} is a {refs.kind_of(existing)}, not a folder.")
        try:
            return parent.CreateFolder(name)._moId
        except vim.fault.DuplicateName:
            continue  # made concurrently: look again
    raise AlreadyExists(f"A folder '{name}' under {parent_ref} could not be made or found.")


def destroy_folder(
    session: Any,
    ref: str,
    *,
    on_progress: ProgressCallback | None = None,
    deadline: float | None = None,
) -> None:
    """Delete an empty folder. A folder with anything in it is refused (InvalidState)."""
    folder = refs.resolve(session, ref, vim.Folder)
    values = props.read(session, folder, ["name", "childEntity", "parent"])
    parent = values.get("parent")
    if parent is None or isinstance(parent, vim.Datacenter):
        raise InvalidArgument(f"'{ref}' is a top-level folder of vCenter; it cannot be deleted.")
    children = values.get("childEntity") or ()
    if children:
        raise InvalidState(f"Folder '{values.get('name', ref)}' is not empty ({len(children)} items in it).")
    task = folder.Destroy_Task()
    wait_for_task(
        session,
        task,
        action=f"delete folder '{values.get('name', ref)}'",
        on_progress=on_progress,
        deadline=deadline,
    )
