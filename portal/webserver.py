"""Several ASGI server processes behind one address: one listening socket, opened here and
inherited by every daphne (`daphne --fd`), so the kernel queues each new connection once and
whichever process is free accepts it (the classic pre-fork server).

`manage.py runportal --web-processes N` uses it. The socket belongs to the process that opened
it: the port stays taken, and no other program can bind it, while any of the daphnes runs; a
daphne that dies takes none of the queued connections with it.
"""

from __future__ import annotations

import ipaddress
import socket

# Connections the kernel queues before a daphne accepts them (Twisted's default is 50).
BACKLOG = 1024


def listen(bind: str, port: int) -> socket.socket:
    """A listening TCP socket on ``bind``:``port``, inheritable by child processes."""
    try:
        if ipaddress.ip_address(bind).version != 4:
            raise ValueError
    except ValueError:
        # daphne adopts an inherited socket as IPv4 only (its fd endpoint's default domain).
        raise ValueError(f"Several web processes need an IPv4 address to bind, not {bind!r}.") from None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Twisted's own listeners
        sock.bind((bind, port))
        sock.listen(BACKLOG)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


def daphne_command(python: str, fd: int) -> str:
    """The command line of one daphne serving the inherited socket ``fd``."""
    return f"{python} -m daphne --fd {fd} portal.asgi:application"
