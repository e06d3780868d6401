"""KSUIDs: the identifiers of events, jobs, transitions and migration runs.

A KSUID is 20 bytes, a 4-byte big-endian timestamp (seconds since 2014-05-13T16:53:20Z) and
16 random bytes, written as 27 base62 characters. They sort by creation time, which keeps the
store's primary keys append-friendly. Generation sits on the ingest hot path, so it is a few
integer operations rather than a dependency.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

EPOCH = 1_400_000_000
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
#: Every two-character base62 string, so encoding takes 13 divisions instead of 27.
_PAIRS = tuple(a + b for a in ALPHABET for b in ALPHABET)
LENGTH = 27


def new_id(at: float | None = None) -> str:
    """Return a new KSUID string; ``at`` (a UNIX time) fixes the timestamp, for tests."""
    return _encode(((int(time.time() if at is None else at) - EPOCH) << 128) | int.from_bytes(os.urandom(16), "big"))


def first_id(at: float) -> str:
    """Return the smallest KSUID of UNIX time ``at``'s second: every id made at or after
    ``at`` sorts at or after it (a store turns a time bound into an id bound with it)."""
    return _encode(max(int(at) - EPOCH, 0) << 128)


def _encode(v: int) -> str:
    """Base62 of a 160-bit value, unrolled (13 divisions by 62², no loop, one join): three
    ids are made per event."""
    v, r0 = divmod(v, 3844)
    v, r1 = divmod(v, 3844)
    v, r2 = divmod(v, 3844)
    v, r3 = divmod(v, 3844)
    v, r4 = divmod(v, 3844)
    v, r5 = divmod(v, 3844)
    v, r6 = divmod(v, 3844)
    v, r7 = divmod(v, 3844)
    v, r8 = divmod(v, 3844)
    v, r9 = divmod(v, 3844)
    v, r10 = divmod(v, 3844)
    v, r11 = divmod(v, 3844)
    v, r12 = divmod(v, 3844)
    p = _PAIRS
    return "".join((ALPHABET[v], p[r12], p[r11], p[r10], p[r9], p[r8], p[r7], p[r6], p[r5], p[r4], p[r3], p[r2],
                    p[r1], p[r0]))


def is_id(text: str) -> bool:
    """Tell whether ``text`` is a well-formed KSUID."""
    return len(text) == LENGTH and all(c in _INDEX for c in text) and text <= "aWgEPTl1tmebfsQzFP4bxwgy80V"


def id_time(text: str) -> datetime:
    """Return the creation time encoded in a KSUID (UTC, second precision)."""
    value = 0
    for c in text:
        value = value * 62 + _INDEX[c]
    return datetime.fromtimestamp((value >> 128) + EPOCH, tz=UTC)
