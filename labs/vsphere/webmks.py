"""VM consoles: a WebMKS ticket from vCenter, and the WebSocket to the ESXi host that serves it.

vSphere documents the webmks ticket as "VNC (a.k.a. RFB) protocol with VMware extensions; the
protocol gracefully degrades to standard VNC if extensions are not available" at
``wss://{host}:{port}/ticket/{ticket}``; the WebSocket subprotocol ``binary`` asks for plain RFB
bytes (``vmware-vvc`` would be VMware's own channel protocol, which noVNC does not speak).
See docs/console.md.
"""

from __future__ import annotations

import asyncio
import hmac
import ssl
from typing import Any

from pyVmomi import vim
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from . import refs
from .connection import sha1_thumbprint, ssl_context
from .errors import InvalidState, PermissionDenied, Unreachable
from .types import ConsoleTicket

SUBPROTOCOL = "binary"
TICKET_TYPE = "webmks"
# RFB updates of a whole screen are a few megabytes; more than this from a host is not a screen.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


def acquire_console_ticket(session: Any, vm: str) -> ConsoleTicket:
    """A fresh webmks ticket for ``vm`` (powered on, or vCenter refuses: InvalidState)."""
    machine = refs.resolve(session, vm, vim.VirtualMachine)
    ticket = machine.AcquireTicket(TICKET_TYPE)
    if not ticket.host:
        raise InvalidState("vCenter gave a console ticket without a host to connect to.")
    port = int(ticket.port or 443)
    return ConsoleTicket(
        vm=machine._moId,
        host=ticket.host,
        port=port,
        ticket=ticket.ticket,
        url=ticket.url or f"wss://{ticket.host}:{port}/ticket/{ticket.ticket}",
        ssl_thumbprint=(ticket.sslThumbprint or None),
    )


def _same_thumbprint(expected: str, der_certificate: bytes) -> bool:
    return hmac.compare_digest(expected.strip().upper(), sha1_thumbprint(der_certificate))


class _CertificateMismatch(Exception):
    pass


def _pinned(expected_thumbprint: str) -> type[ClientConnection]:
    """A connection class that checks the host's certificate against the thumbprint after the
    TLS handshake and before the WebSocket request (which carries the ticket) is sent."""

    class PinnedConnection(ClientConnection):
        async def handshake(self, *args: Any, **kwargs: Any) -> None:
            peer = self.transport.get_extra_info("ssl_object")
            der = peer.getpeercert(binary_form=True) if peer is not None else None
            if der is None or not _same_thumbprint(expected_thumbprint, der):
                raise _CertificateMismatch()
            await super().handshake(*args, **kwargs)

    return PinnedConnection


class ConsoleStream:
    """The open WebSocket to an ESXi host's console: RFB bytes in binary messages."""

    def __init__(self, connection: ClientConnection, ticket: ConsoleTicket) -> None:
        self._connection = connection
        self.host = f"{ticket.host}:{ticket.port}"

    async def send(self, data: bytes) -> None:
        try:
            await self._connection.send(data)
        except ConnectionClosed as closed:
            raise self._ended(closed) from None

    async def receive(self) -> bytes:
        """The next message; raises ``Unreachable`` in words when the host closed or went away."""
        try:
            message = await self._connection.recv()
        except ConnectionClosed as closed:
            raise self._ended(closed) from None
        return message if isinstance(message, bytes) else message.encode()

    def _ended(self, closed: ConnectionClosed) -> Unreachable:
        reason = closed.rcvd.reason if closed.rcvd is not None and closed.rcvd.reason else None
        return Unreachable(
            f"The ESXi host {self.host} ended the console" + (f": {reason}" if reason else " (the connection was cut).")
        )

    async def close(self) -> None:
        await self._connection.close()


async def open_console_stream(
    ticket: ConsoleTicket, *, verify_tls: bool = True, ca_pem: str | None = None, timeout: float = 10.0
) -> ConsoleStream:
    """Connect to the host named in ``ticket``. The host's certificate must match the ticket's
    thumbprint (vCenter vouches for its hosts that way), checked before the request carrying the
    ticket is sent; without one it must be trusted
    (system CAs plus ``ca_pem``) unless ``verify_tls`` is off. Errors are ``VSphereError``s
    in words: Unreachable (no answer in ``timeout`` seconds, refused, cut), InvalidState (the
    host refused the ticket: used or expired), PermissionDenied (a certificate that does not match)."""
    where = f"{ticket.host}:{ticket.port}"
    if ticket.ssl_thumbprint:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # pinned to the thumbprint instead (_pinned)
        connection_class = _pinned(ticket.ssl_thumbprint)
    else:
        context = ssl_context(verify_tls, ca_pem)
        connection_class = ClientConnection
    try:
        connection = await asyncio.wait_for(
            connect(
                ticket.url,
                ssl=context,
                subprotocols=[SUBPROTOCOL],
                open_timeout=None,
                max_size=MAX_MESSAGE_BYTES,
                compression=None,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=2,
                create_connection=connection_class,
            ),
            timeout,
        )
    except TimeoutError:
        raise Unreachable(f"The ESXi host {where} serving the console did not answer in {timeout:g} s.") from None
    except InvalidStatus as refused:
        status = refused.response.status_code
        if status in (401, 403, 404):
            raise InvalidState(
                f"The ESXi host {where} refused the console ticket (HTTP {status}): it was used or it expired."
            ) from None
        raise Unreachable(f"The ESXi host {where} refused the console (HTTP {status}).") from None
    except _CertificateMismatch:
        raise PermissionDenied(
            f"The ESXi host {where} presented a certificate that is not the one vCenter knows "
            "(thumbprint mismatch): the console was not opened and the ticket was not sent."
        ) from None
    except ssl.SSLCertVerificationError as error:
        raise PermissionDenied(
            f"The ESXi host {where} has a TLS certificate that is not trusted ({error.verify_message}); "
            "install its CA certificate on the endpoint or turn off certificate verification."
        ) from None
    except (OSError, InvalidHandshake) as error:
        raise Unreachable(f"Could not reach the ESXi host {where} serving the console: {error}.") from None
    if connection.subprotocol != SUBPROTOCOL:
        await connection.close()
        raise Unreachable(f"The ESXi host {where} does not offer the VNC console (subprotocol '{SUBPROTOCOL}').")
    return ConsoleStream(connection, ticket)
