"""The artifact store: release images on local disk, content-addressed by SHA-256.

``artifacts/ab/abcdef...`` (the first two hex digits as a folder).  A file is written to a temporary name
in the same folder, flushed to disk, then renamed into place, so a reader never sees half a file and a crash
leaves at most a stray ``.tmp`` (removed at start-up).  The same bytes uploaded twice are stored once.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

__all__ = ["artifact_path", "remove_artifact", "store_artifact", "sweep_temporary"]

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def artifact_path(root: Path, sha256: str) -> Path:
    if not _SHA256_RE.match(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256[:80]!r}")
    return root / sha256[:2] / sha256


def store_artifact(root: Path, sha256: str, data: bytes) -> Path:
    """Write ``data`` under its digest (atomically); returns the path."""
    path = artifact_path(root, sha256)
    if path.exists() and path.stat().st_size == len(data):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


def remove_artifact(root: Path, sha256: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        artifact_path(root, sha256).unlink()


def sweep_temporary(root: Path) -> int:
    """Remove leftovers of interrupted writes; returns how many."""
    count = 0
    if root.is_dir():
        for tmp in root.glob("*/*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                count += 1
    return count
