"""The browser's half of an RFB (VNC, RFC 6143) stream, read by the console relay.

The relay forwards the browser's bytes to the ESXi host as they come, but follows the stream
message by message so that it can: keep an observer read-only (their key, pointer and
clipboard messages are dropped, the rest passes), make every connection shared (ClientInit's
flag set, so one person's console never disconnects another's), and tell input from the
browser's own update requests (input is what keeps a lab from being idle). A message it does
not know ends the session: past it, the stream cannot be followed.

Whole-screen update requests are rationed: each is a dozen bytes from the browser and a whole
screen (over a megabyte, Raw) from the host, which daphne would buffer for a browser that asks
and never reads. Past a small budget, a whole-screen request goes on as an incremental one
(what changed only), which noVNC's own requests after the first are anyway.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

# Client-to-server message types and their fixed lengths (type byte included).
SET_PIXEL_FORMAT = 0
SET_ENCODINGS = 2
FRAMEBUFFER_UPDATE_REQUEST = 3
KEY_EVENT = 4
POINTER_EVENT = 5
CLIENT_CUT_TEXT = 6
_FIXED = {SET_PIXEL_FORMAT: 20, FRAMEBUFFER_UPDATE_REQUEST: 10, KEY_EVENT: 8, POINTER_EVENT: 6}
INPUT = frozenset({KEY_EVENT, POINTER_EVENT, CLIENT_CUT_TEXT})
MAX_CUT_TEXT = 1 << 20  # a browser pasting more than a megabyte into a VM's clipboard is not typing
# Whole-screen requests: a burst of this many, then one more per FULL_SCREEN_SECONDS.
FULL_SCREEN_BURST = 5
FULL_SCREEN_SECONDS = 1.0

_VERSION, _SECURITY, _CLIENT_INIT, _MESSAGES = range(4)


class ProtocolError(ValueError):
    """The browser sent something the relay cannot follow; the words say what."""


@dataclass
class Filtered:
    forward: bytes  # what goes on to the host
    input_messages: int  # key, pointer and clipboard messages seen (forwarded or not)
    dropped: int  # input messages dropped because the session is read-only
    rationed: int = 0  # whole-screen update requests sent on as incremental ones


class ClientStream:
    """Feed it the browser's bytes in any pieces; it returns what to forward."""

    def __init__(self, *, read_only: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.read_only = read_only
        self._state = _VERSION
        self._buffer = bytearray()
        self._clock = clock
        self._full_screens = float(FULL_SCREEN_BURST)
        self._refilled_at = clock()

    def feed(self, data: bytes) -> Filtered:
        self._buffer += data
        forward = bytearray()
        inputs = dropped = rationed = 0
        while True:
            length = self._next_length()
            if length is None or len(self._buffer) < length:
                break
            piece = bytes(self._buffer[:length])
            del self._buffer[:length]
            if self._state == _MESSAGES:
                kind = piece[0]
                if kind in INPUT:
                    inputs += 1
                    if self.read_only:
                        dropped += 1
                        continue
                if kind == FRAMEBUFFER_UPDATE_REQUEST and piece[1] == 0 and not self._take_full_screen():
                    piece = piece[:1] + b"\x01" + piece[2:]
                    rationed += 1
                forward += piece
            else:
                forward += self._handshake(piece)
        return Filtered(bytes(forward), inputs, dropped, rationed)

    def _take_full_screen(self) -> bool:
        now = self._clock()
        self._full_screens = min(
            float(FULL_SCREEN_BURST), self._full_screens + (now - self._refilled_at) / FULL_SCREEN_SECONDS
        )
        self._refilled_at = now
        if self._full_screens >= 1:
            self._full_screens -= 1
            return True
        return False

    def _next_length(self) -> int | None:
        """The length of the next whole piece, or None until enough bytes say it."""
        if self._state == _VERSION:
            return 12
        if self._state in (_SECURITY, _CLIENT_INIT):
            return 1
        if not self._buffer:
            return None
        kind = self._buffer[0]
        if kind in _FIXED:
            return _FIXED[kind]
        if kind == SET_ENCODINGS:
            if len(self._buffer) < 4:
                return None
            (count,) = struct.unpack_from(">H", self._buffer, 2)
            return 4 + 4 * count
        if kind == CLIENT_CUT_TEXT:
            if len(self._buffer) < 8:
                return None
            (size,) = struct.unpack_from(">i", self._buffer, 4)
            size = abs(size)  # negative: the extended clipboard form, same framing
            if size > MAX_CUT_TEXT:
                raise ProtocolError("The browser pasted more than 1 MB into the console's clipboard.")
            return 8 + size
        raise ProtocolError(f"The browser sent an RFB message the relay does not know (type {kind}).")

    def _handshake(self, piece: bytes) -> bytes:
        if self._state == _VERSION:
            if not piece.startswith(b"RFB 003."):
                raise ProtocolError("The browser did not start an RFB (VNC) session.")
            # RFB 3.3 has the server choose the security type: no byte from the client.
            self._state = _CLIENT_INIT if piece[8:11] == b"003" else _SECURITY
            return piece
        if self._state == _SECURITY:
            if piece != b"\x01":
                raise ProtocolError("The console offers no authentication but None (the ticket is the key).")
            self._state = _CLIENT_INIT
            return piece
        self._state = _MESSAGES
        return b"\x01"  # ClientInit: shared, whatever the browser asked
