"""The append-only journal: one framed line per committed unit of work.

A line is `<crc32 as 8 hex digits> <JSON>\n`. The first line is a header naming the domain, the
schema and `base_seq`, the sequence number the snapshots were at when this journal was started;
records then carry seq base_seq+1, base_seq+2, ... with no gap.

The file is allocated ahead of the records; that space holds zero bytes and ends the log.

Only the last line can be damaged by a crash or power loss: a record is written only after the one
before it was fsynced. So a bad last line is an interrupted commit that nobody was told succeeded
(it is skipped, and cut off by the next writer); a bad line with anything after it is corruption.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from astra.ports.store import StoreCorrupt

from .layout import FORMAT


def frame(payload: dict[str, Any]) -> bytes:
    body = orjson.dumps(payload)
    return b"%08x %s\n" % (zlib.crc32(body), body)


def header(domain: str, schema: int, base_seq: int) -> bytes:
    return frame(
        {
            "format": FORMAT,
            "kind": "journal",
            "domain": domain,
            "schema": schema,
            "base_seq": base_seq,
        }
    )


def record(seq: int, ops: list[list[Any]]) -> bytes:
    return frame({"seq": seq, "ops": ops})


@dataclass
class TornTail:
    offset: int
    length: int
    reason: str


@dataclass
class Parsed:
    records: list[dict[str, Any]]
    end: int  # offset just past the last good line
    torn: TornTail | None


def _decode(line: bytes) -> dict[str, Any] | str:
    """The payload of one framed line, or a string saying what is wrong with it."""
    if len(line) < 10 or line[8:9] != b" ":
        return "malformed frame"
    try:
        expected = int(line[:8], 16)
    except ValueError:
        return "malformed checksum"
    body = line[9:]
    if zlib.crc32(body) != expected:
        return "checksum mismatch"
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "invalid JSON"
    if not isinstance(payload, dict):
        return "record is not an object"
    return payload


def parse(buf: bytes, start: int, path: str) -> Parsed:
    """Parse framed lines from `buf`, which holds the file's bytes from offset `start` to EOF."""
    records: list[dict[str, Any]] = []
    pos = 0
    # Space allocated ahead of the records is zeros; records never contain a NUL byte.
    size = len(buf.rstrip(b"\0"))
    while pos < size:
        nl = buf.find(b"\n", pos)
        if nl < 0:
            return Parsed(
                records, start + pos, TornTail(start + pos, size - pos, "incomplete record")
            )
        decoded = _decode(buf[pos:nl])
        if isinstance(decoded, str):
            if nl + 1 == size:
                return Parsed(records, start + pos, TornTail(start + pos, size - pos, decoded))
            raise StoreCorrupt(
                path,
                f"journal record at byte {start + pos} is damaged ({decoded}) and "
                f"{size - nl - 1} bytes of later records follow it",
            )
        records.append(decoded)
        pos = nl + 1
    return Parsed(records, start + pos, None)


def check_header(payload: dict[str, Any], domain: str, path: str) -> tuple[int, int]:
    """(schema, base_seq) of a journal header, or StoreCorrupt."""
    if payload.get("format") != FORMAT or payload.get("kind") != "journal":
        raise StoreCorrupt(path, "not an Astra journal (bad header)")
    if payload.get("domain") != domain:
        raise StoreCorrupt(path, f"journal belongs to {payload.get('domain')!r}, not {domain!r}")
    schema, base = payload.get("schema"), payload.get("base_seq")
    if not isinstance(schema, int) or not isinstance(base, int) or base < 0:
        raise StoreCorrupt(path, "journal header lacks a valid schema or base_seq")
    return schema, base
