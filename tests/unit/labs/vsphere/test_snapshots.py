"""Snapshot trees built from plain data, and picking a snapshot by moref or name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

from labs.vsphere.snapshots import pick, snapshot_tree

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def node(moref, name, minutes, children=(), state="poweredOff", description=None):
    return SimpleNamespace(
        snapshot=moref,
        name=name,
        description=description,
        createTime=T0 + timedelta(minutes=minutes),
        state=state,
        quiesced=False,
        childSnapshotList=list(children),
    )


RAW = [
    node(
        "snapshot-1",
        "baseline",
        0,
        [
            node("snapshot-2", "step-1", 10, [node("snapshot-4", "retry", 30)], state="poweredOn"),
            node("snapshot-3", "retry", 20, description="second try"),
        ],
    )
]


def test_tree_shape_and_fields():
    [root] = snapshot_tree(RAW, current="snapshot-2")

    assert (root.moref, root.name, root.description, root.state) == ("snapshot-1", "baseline", "", "poweredOff")
    assert [child.name for child in root.children] == ["step-1", "retry"]
    assert root.children[0].state == "poweredOn"
    assert root.children[1].description == "second try"
    assert [n.moref for n in root.walk()] == ["snapshot-1", "snapshot-2", "snapshot-4", "snapshot-3"]
    assert [n.moref for n in root.walk() if n.is_current] == ["snapshot-2"]


def test_times_become_plain_utc():
    other_zone = timezone(timedelta(hours=2))
    naive = node("snapshot-1", "a", 0)
    naive.createTime = datetime(2026, 1, 5, 9, 0)
    aware = node("snapshot-2", "b", 0)
    aware.createTime = datetime(2026, 1, 5, 11, 0, tzinfo=other_zone)

    first, second = snapshot_tree([naive, aware])

    assert first.created == second.created == T0
    assert first.created.tzinfo is UTC or first.created.utcoffset() == timedelta(0)


def test_empty():
    assert snapshot_tree(None) == ()
    assert snapshot_tree([]) == ()


def test_pick_by_moref_then_newest_by_name():
    roots = snapshot_tree(RAW)

    assert pick(roots, "snapshot-3").name == "retry"
    assert pick(roots, "retry").moref == "snapshot-4"  # 30 minutes is newer than 20
    assert pick(roots, "baseline").moref == "snapshot-1"
    assert pick(roots, "nope") is None


def test_a_name_that_looks_like_a_moref_matches_the_moref_first():
    roots = snapshot_tree([node("snapshot-1", "snapshot-2", 0, [node("snapshot-2", "x", 5)])])

    assert pick(roots, "snapshot-2").name == "x"
