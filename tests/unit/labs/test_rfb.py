"""labs/rfb.py: following the browser's RFB stream in any pieces, read-only sessions, sharing."""

from __future__ import annotations

import re
import struct

import pytest

from labs.rfb import ClientStream, ProtocolError

HANDSHAKE = b"RFB 003.008\n" + b"\x01" + b"\x00"  # version, security None, ClientInit exclusive
KEY_A = struct.pack(">BBxxI", 4, 1, ord("a"))
POINTER = struct.pack(">BBHH", 5, 1, 10, 20)
UPDATE_REQUEST = struct.pack(">BBHHHH", 3, 1, 0, 0, 720, 400)
ENCODINGS = struct.pack(">BxHii", 2, 2, 0, -223)
CUT_TEXT = struct.pack(">BxxxI", 6, 5) + b"hello"


def test_every_connection_is_made_shared_whatever_the_browser_asked():
    out = ClientStream(read_only=False).feed(HANDSHAKE)
    assert out.forward == b"RFB 003.008\n\x01\x01"


def test_a_controlling_session_forwards_everything_and_counts_input():
    stream = ClientStream(read_only=False)
    stream.feed(HANDSHAKE)
    out = stream.feed(ENCODINGS + UPDATE_REQUEST + KEY_A + POINTER + CUT_TEXT)
    assert out.forward == ENCODINGS + UPDATE_REQUEST + KEY_A + POINTER + CUT_TEXT
    assert (out.input_messages, out.dropped) == (3, 0)


def test_a_read_only_session_drops_keys_pointer_and_clipboard_but_not_update_requests():
    stream = ClientStream(read_only=True)
    stream.feed(HANDSHAKE)
    out = stream.feed(KEY_A + UPDATE_REQUEST + POINTER + CUT_TEXT + ENCODINGS)
    assert out.forward == UPDATE_REQUEST + ENCODINGS
    assert (out.input_messages, out.dropped) == (3, 3)


def test_messages_split_anywhere_come_out_whole():
    stream = ClientStream(read_only=True)
    data = HANDSHAKE + ENCODINGS + KEY_A + UPDATE_REQUEST + CUT_TEXT + UPDATE_REQUEST
    forwarded = b"".join(stream.feed(data[i : i + 1]).forward for i in range(len(data)))
    assert forwarded == b"RFB 003.008\n\x01\x01" + ENCODINGS + UPDATE_REQUEST + UPDATE_REQUEST


def test_rfb_3_3_has_no_security_byte_from_the_client():
    out = ClientStream(read_only=False).feed(b"RFB 003.003\n" + b"\x00" + UPDATE_REQUEST)
    assert out.forward == b"RFB 003.003\n\x01" + UPDATE_REQUEST


@pytest.mark.parametrize(
    "data, words",
    [
        (b"GET / HTTP/1.1\r\n\r\n", "did not start an RFB"),
        (b"RFB 003.008\n\x02", "no authentication but None"),
        (HANDSHAKE + b"\x7f", "does not know (type 127)"),
        (HANDSHAKE + struct.pack(">BxxxI", 6, 2 << 20), "more than 1 MB"),
    ],
)
def test_what_cannot_be_followed_is_refused_in_words(data, words):
    with pytest.raises(ProtocolError, match=re.escape(words)):
        ClientStream(read_only=False).feed(data)


def test_whole_screen_requests_past_the_budget_go_on_as_incremental_ones():
    now = [100.0]
    stream = ClientStream(read_only=False, clock=lambda: now[0])
    stream.feed(HANDSHAKE)
    full = struct.pack(">BBHHHH", 3, 0, 0, 0, 720, 400)
    out = stream.feed(full * 8)
    assert out.forward == full * 5 + UPDATE_REQUEST * 3  # the burst, then what changed only
    assert out.rationed == 3
    now[0] += 2.0  # two more whole screens earned
    out = stream.feed(full * 3)
    assert out.forward == full * 2 + UPDATE_REQUEST and out.rationed == 1
