"""Reading a ``file://`` feed: regular files only, under the size cap.

A FIFO would block the reader forever and ``/dev/zero`` never ends, so the
path is looked at before it is opened, opened without blocking, and looked at
again through the open descriptor (the path may have changed in between).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import unquote, urlsplit

from digest.core.errors import SourceError


def path_of(url: str) -> Path:
    return Path(unquote(urlsplit(url).path))


def _kind(mode: int) -> str | None:
    """What a non-regular file is, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _refuse_unless_regular(url: str, mode: int) -> None:
    kind = _kind(mode)
    if kind is not None:
        raise SourceError(url, f"{kind}, not a regular file: a file:// feed must be a file")


def check_regular(url: str) -> None:
    """``SourceError`` if the path exists and is not a regular file (a missing file passes)."""
    try:
        _refuse_unless_regular(url, os.stat(path_of(url)).st_mode)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SourceError(url, f"cannot read: {exc.strerror}") from None


def read_capped(url: str, max_bytes: int) -> bytes:
    """The file's bytes; ``SourceError`` for a non-regular file or one over ``max_bytes``."""
    path = path_of(url)
    try:
        _refuse_unless_regular(url, os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            _refuse_unless_regular(url, info.st_mode)
            if info.st_size > max_bytes:
                raise SourceError(url, too_large(max_bytes))
            data = file.read(max_bytes + 1)  # it may have grown since
    except OSError as exc:
        raise SourceError(url, f"cannot read: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise SourceError(url, too_large(max_bytes))
    return data


def too_large(max_bytes: int) -> str:
    return f"response larger than {max_bytes} bytes"
