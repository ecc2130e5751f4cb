"""Files written whole or not at all: temp file in the same folder, fsync, rename, fsync the folder.

One helper for every file mailbot writes (archived mail, attachments, packages, health), so a
crash never leaves half a file where a reader expects a whole one.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(path: Path, content: bytes, *, replace: bool = True, mode: int | None = None) -> bool:
    """Write `content` at `path`; True if this call put it there.

    replace=False keeps a file already there (content-addressed files, or another daemon that
    won the race): the first writer wins. `mode` overrides mkstemp's 0600 for files people open.
    """
    path = Path(path)
    if not replace and path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    written = True
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)          # fails where the file exists: the first writer wins
            except FileExistsError:
                written = False
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    # the rename is durable only once the folder's entry is on disk
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return written
