"""Typed decoding of stored timelines (``CustomerTimeline.to_bytes``), in C by msgspec.

A module of its own because the engine modules are compiled with mypyc
(stream/native.py), which would compile the struct below as a class of its own and drop
msgspec's ``array_like`` layout.
"""

from __future__ import annotations

import msgspec


class _StoredContact(msgspec.Struct, array_like=True, gc=False):
    """A contact as ``to_bytes`` writes it: an array, the ``[name, value]`` pairs of its
    extra dimensions last, left out when there are none (and by older versions)."""

    timestamp_ms: int
    contact_id: str
    channel: str
    reason: str
    dimensions: tuple[tuple[str, str], ...] = ()


# Typed decoding builds the fields in C: no list per contact to take apart in Python.
decode_stored = msgspec.json.Decoder(list[_StoredContact]).decode
