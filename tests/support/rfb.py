"""A small RFB 3.8 (VNC) client for tests: it speaks to the simulator's WebMKS endpoint directly,
or through the portal's console relay, over any transport that sends and receives binary
WebSocket messages (``websockets`` for a real socket, Channels' ``WebsocketCommunicator``).

It keeps the framebuffer (Raw and the 32-bit pixel format the server offers), so a test can
look at pixels, and types text as X11 key symbols, as a browser client does.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable

RAW = 0
CONTROL_L = 0xFFE3
ALT_L = 0xFFE9
DELETE = 0xFFFF
RETURN = 0xFF0D


class RfbError(Exception):
    pass


class RfbClient:
    """``send(bytes)`` and ``receive() -> bytes`` are the transport's (awaitables)."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], receive: Callable[[], Awaitable[bytes]]):
        self._send = send
        self._receive = receive
        self._buffer = bytearray()
        self.width = self.height = 0
        self.name = ""
        self.pixels = bytearray()
        self.updates = 0

    async def _read(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = await self._receive()
            if not isinstance(chunk, bytes | bytearray):
                raise RfbError(f"expected a binary message, got {chunk!r}")
            self._buffer += chunk
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    async def handshake(self) -> None:
        version = await self._read(12)
        if not version.startswith(b"RFB 003."):
            raise RfbError(f"not an RFB server: {version!r}")
        await self._send(b"RFB 003.008\n")
        (count,) = await self._read(1)
        types = await self._read(count)
        if 1 not in types:
            raise RfbError(f"no security type None offered: {list(types)}")
        await self._send(b"\x01")
        (result,) = struct.unpack(">I", await self._read(4))
        if result != 0:
            raise RfbError("security handshake failed")
        await self._send(b"\x01")  # ClientInit: shared
        self.width, self.height = struct.unpack(">HH", await self._read(4))
        pixel_format = await self._read(16)
        if pixel_format[0] != 32:
            raise RfbError(f"unexpected pixel format {pixel_format!r}")
        (length,) = struct.unpack(">I", await self._read(4))
        self.name = (await self._read(length)).decode()
        self.pixels = bytearray(self.width * self.height * 4)
        await self._send(struct.pack(">BxH i", 2, 1, RAW))  # SetEncodings: Raw

    async def request_update(self, *, incremental: bool) -> None:
        await self._send(struct.pack(">BBHHHH", 3, int(incremental), 0, 0, self.width, self.height))

    async def read_update(self) -> list[tuple[int, int, int, int]]:
        """Read one FramebufferUpdate into ``pixels``; returns its rectangles."""
        kind = (await self._read(1))[0]
        if kind != 0:
            raise RfbError(f"unexpected server message {kind}")
        _, count = struct.unpack(">BH", await self._read(3))
        rects = []
        for _ in range(count):
            x, y, w, h, encoding = struct.unpack(">HHHHi", await self._read(12))
            if encoding != RAW:
                raise RfbError(f"unexpected encoding {encoding}")
            data = await self._read(w * h * 4)
            for row in range(h):
                start = ((y + row) * self.width + x) * 4
                self.pixels[start : start + w * 4] = data[row * w * 4 : (row + 1) * w * 4]
            rects.append((x, y, w, h))
        self.updates += 1
        return rects

    async def key(self, keysym: int, *, down: bool) -> None:
        await self._send(struct.pack(">BBxxI", 4, int(down), keysym))

    async def tap(self, keysym: int) -> None:
        await self.key(keysym, down=True)
        await self.key(keysym, down=False)

    async def type(self, text: str) -> None:
        for character in text:
            await self.tap(RETURN if character == "\n" else ord(character))

    async def ctrl_alt_del(self) -> None:
        for keysym in (CONTROL_L, ALT_L, DELETE):
            await self.key(keysym, down=True)
        for keysym in (DELETE, ALT_L, CONTROL_L):
            await self.key(keysym, down=False)

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        """(red, green, blue) at x, y (the server's format: 32 bits, little-endian, red at bit 16)."""
        start = (y * self.width + x) * 4
        blue, green, red = self.pixels[start : start + 3]
        return red, green, blue

    def region(self, top: int, bottom: int) -> bytes:
        return bytes(self.pixels[top * self.width * 4 : bottom * self.width * 4])
