"""Received mail and attachments as content-addressed files under the storage folder, never rewritten."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from mailbot.store.database import Database
from mailbot.store.files import write_atomically

__all__ = ["Blobs"]

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class Blobs(Database):
    """The raw archive (storage/raw) and the stored files (storage/files), named by sha256."""

    def raw_path(self, sha256: str) -> Path:
        sha = _check_sha(sha256)
        return self.storage_dir / "raw" / sha[:2] / f"{sha}.eml"

    def file_path(self, sha256: str) -> Path:
        sha = _check_sha(sha256)
        return self.storage_dir / "files" / sha[:2] / sha

    def archive_raw(self, raw: bytes) -> str:
        """Keep a received message's bytes, before anything else looks at them; returns the sha256."""
        sha = hashlib.sha256(raw).hexdigest()
        path = self.raw_path(sha)
        write_atomically(path, raw, replace=False, durable=self._durably(path))
        return sha

    def save_file(self, content: bytes) -> str:
        sha = hashlib.sha256(content).hexdigest()
        path = self.file_path(sha)
        write_atomically(path, content, replace=False, durable=self._durably(path))
        return sha

    def read_raw(self, sha256: str) -> bytes:
        return self.raw_path(sha256).read_bytes()

    def read_file(self, sha256: str) -> bytes:
        return self.file_path(sha256).read_bytes()


def _check_sha(sha256: str) -> str:
    # The sha names a path: anything else (from a CLI argument, say) must not reach the disk.
    if not isinstance(sha256, str) or not _SHA256_RE.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256
