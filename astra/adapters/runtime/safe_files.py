"""Reading files a tenant runtime could have written or replaced.

A runtime may swap what the platform expects to find for a FIFO (a read that never returns), a
symlink to /dev/zero (a read without end) or a link to another tenant's file. Whatever the
platform still reads from such a place is opened without following a final symlink and without
blocking, checked to be a regular file, and read up to a size cap.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class UnsafeFile(OSError):
    """The path is not a regular file (a FIFO, a device, a directory, a symlink)."""


def read_capped(path: Path | str, limit: int, *, tail: bool = False) -> bytes:
    """At most `limit` bytes of a regular file: its start, or its end with `tail`."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"{path}: not a regular file")
        if tail and info.st_size > limit:
            os.lseek(fd, info.st_size - limit, os.SEEK_SET)
        chunks: list[bytes] = []
        left = limit
        while left > 0:
            chunk = os.read(fd, min(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
