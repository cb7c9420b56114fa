"""Sizes in words a person reads at a glance: 96 MB, 1.5 GB, 2 TB."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def memory_size(megabytes: int | float | None) -> str:
    """Memory given in MB, in the largest unit that keeps a number of at least 1: "96 MB" for three
    32 MB VMs (it read "0 GB RAM"), "1.5 GB", "2 TB"; one decimal, none when whole."""
    if megabytes is None:
        return ""
    value, unit = float(megabytes), "MB"
    for bigger in ("GB", "TB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    shown = f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{shown} {unit}"
