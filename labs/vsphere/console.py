"""A link to the vSphere Client's HTML5 console for one VM.

The vSphere Client (6.5 and later) opens a VM console at
``https://<vcenter>/ui/webconsole.html`` with the query parameters
``vmId`` (moref), ``vmName``, ``serverGuid`` (vCenter's ``about.instanceUuid``),
``locale``, ``host`` (``<vcenter>:<port>``), ``sessionTicket`` (a one-time ticket from
``SessionManager.AcquireCloneTicket``, which logs the browser in as the portal's vCenter
user) and ``thumbprint`` (SHA-1 of vCenter's TLS certificate, "AB:CD:..."). The ticket is
single-use and short-lived: build the link when the user clicks, not in advance.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from pyVmomi import vim

from . import props, refs
from .types import Address


def build_console_url(
    *,
    address: Address,
    vm_moref: str,
    vm_name: str,
    server_guid: str,
    ticket: str,
    thumbprint: str | None,
    locale: str = "en_US",
) -> str:
    """The console URL, from plain values (no vCenter needed)."""
    default_port = 443 if address.scheme == "https" else 80
    base = address.host if address.port == default_port else address.netloc
    if ":" in address.host and address.port == default_port:
        base = f"[{address.host}]"
    query = [
        ("vmId", vm_moref),
        ("vmName", vm_name),
        ("serverGuid", server_guid),
        ("locale", locale),
        ("host", address.netloc),
        ("sessionTicket", ticket),
    ]
    if thumbprint:
        query.append(("thumbprint", thumbprint))
    return f"{address.scheme}://{base}/ui/webconsole.html?{urlencode(query, quote_via=quote)}"


def console_url(session: Any, vm_ref: str, *, locale: str = "en_US") -> str:
    vm = refs.resolve(session, vm_ref, vim.VirtualMachine)
    name = props.read(session, vm, ["name"]).get("name", vm._moId)
    content = session.content
    ticket = content.sessionManager.AcquireCloneTicket()
    return build_console_url(
        address=session.address,
        vm_moref=vm._moId,
        vm_name=name,
        server_guid=content.about.instanceUuid or "",
        ticket=ticket,
        thumbprint=session.thumbprint,
        locale=locale,
    )
