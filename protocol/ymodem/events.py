"""What the YMODEM cores report: frozen keyword-only events (progress is :class:`~protocol.sansio.Progress`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..sansio import Event

__all__ = ["BatchComplete", "FileData", "FileReceived", "FileSent", "FileStarted"]


@dataclass(frozen=True, kw_only=True)
class FileStarted(Event):
    """Block 0 of a file arrived (receiver), or was ACKed (sender).  ``size`` is ``None`` when the sender gave
    none (plain XMODEM, or a block 0 without a size); ``mtime`` (seconds since the epoch) and ``mode`` (Unix
    mode bits) are ``None`` when absent.  The name is exactly what the peer sent: pass it through
    :func:`safe_filename` before using it as a path."""

    name: str
    size: int | None
    mtime: int | None = None
    mode: int | None = None


@dataclass(frozen=True, kw_only=True)
class FileData(Event):
    """Payload of one accepted block, in order; padding stripped at the declared size unless the receiver was
    built with ``keep_padding=True``."""

    data: bytes


@dataclass(frozen=True, kw_only=True)
class FileReceived(Event):
    """The receiver ACKed the file's EOT.  ``size`` is the number of payload bytes delivered."""

    name: str
    size: int


@dataclass(frozen=True, kw_only=True)
class FileSent(Event):
    """The receiver ACKed our EOT for this file."""

    name: str
    size: int


@dataclass(frozen=True, kw_only=True)
class BatchComplete(Event):
    """The end-of-batch block 0 was sent and ACKed (or a plain XMODEM transfer's single file ended)."""
