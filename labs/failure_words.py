"""Why a lab or one of its operations failed, in the words its student reads.

The stored error (``Lab.error``, ``Operation.error``) is the detail staff need: vCenter's own
words, which may name its host and port, a datastore, an endpoint or a VM's inventory id. A
lab's student reads what happened and what to do instead, never that detail
(docs/security.md, fourth round). Who reads which: ``labs.permissions.sees_failure_detail``.
"""

from __future__ import annotations

import re

# Words of the portal's own that name nothing of the infrastructure: shown as they are.
_AS_THEY_ARE = frozenset(
    {
        "Cancelled before it started.",
        "Cancelled on request.",
        "The lab was deleted.",
        "That snapshot was deleted.",
    }
)

# The portal's frames around a cause (labs/jobs/lab_ops.py), most specific first: what happened.
_WHAT_HAPPENED = (
    ("Provisioning failed:", "The lab could not be built"),
    ("Reset failed:", "The reset did not finish"),
    ("Deleting failed:", "The lab could not be deleted"),
    ("The revert stopped part way:", "The revert stopped part way"),
)

_UNREACHABLE = re.compile(r"cannot talk to vCenter|could not be reached", re.IGNORECASE)
# labs.metering.vanished_words: the lab's own VM roles, which its student sees anyway.
_VANISHED = re.compile(r"[\w., -]+ disappeared from vCenter\.( Reset rebuilds the lab\.)?")

WHAT_TO_DO = "Try again later or ask your instructor."


def for_students(error: str) -> str:
    """``error`` (a lab's or an operation's) without the infrastructure's details: what happened,
    why in general terms (the lab servers could not be reached, or reported a problem), and what
    to do. Empty stays empty."""
    error = (error or "").strip()
    if not error or error in _AS_THEY_ARE or _VANISHED.fullmatch(error):
        return error
    happened = next((words for frame, words in _WHAT_HAPPENED if error.startswith(frame)), "It did not work")
    cause = (
        "the lab servers could not be reached" if _UNREACHABLE.search(error) else "the lab servers reported a problem"
    )
    return f"{happened}: {cause}. {WHAT_TO_DO}"


# Where the console's host and vCenter are, in the driver's words (labs/vsphere/webmks.py,
# labs/vsphere/errors.py): the rest of the words say what happened and stay.
_ADDRESSES = (
    (re.compile(r"(Could not reach the ESXi host) \S+ (serving the console):.*"), r"\1 \2."),
    (re.compile(r"(ESXi host) (?!serving )\S+"), r"\1"),
    (re.compile(r"(vCenter) at \S+:\d+"), r"\1"),
    (re.compile(r" \([^()]*'[^()]*\)"), ""),  # a certificate's complaint, which names the host it expected
)


def without_addresses(words: str) -> str:
    """A console's end in the driver's words, without the ESXi host's or vCenter's address: for
    a student, whose console ended (the host did not answer, the VM powered off...)."""
    for pattern, replacement in _ADDRESSES:
        words = pattern.sub(replacement, words)
    return words
