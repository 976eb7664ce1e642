"""Events of the stm32ota update protocol cores (both roles).

Host events answer the command methods of :class:`~protocol.update.host.HostConnection`; device events are
requests the owner of a :class:`~protocol.update.device.DeviceConnection` (the bootloader) must answer.
Shared events (:class:`~protocol.sansio.Progress`, :class:`~protocol.sansio.DeviceLog`,
:class:`~protocol.sansio.ChangeBaud`) come from :mod:`protocol.sansio`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..sansio import Event
from .messages import DeviceInfo
from .status import Status

__all__ = [
    "AbortRequested",
    "ActivateRequested",
    "BaudChangeFailed",
    "BaudChangeRequested",
    "BaudChanged",
    "BlockReceived",
    "CommandComplete",
    "ConfirmRequested",
    "EraseRequested",
    "InfoReceived",
    "InfoRequested",
    "LoggingChanged",
    "ReadRequested",
    "RebootRequested",
    "RollbackRequested",
    "SlotDigest",
    "SlotErased",
    "SlotRead",
    "TransferComplete",
    "TransferEnded",
    "TransferRequested",
    "TransferStarted",
    "VerifyRequested",
]


# --- host side ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class InfoReceived(Event):
    """``request_info()`` completed."""

    info: DeviceInfo


@dataclass(frozen=True, kw_only=True)
class CommandComplete(Event):
    """A command without a reply body completed with OK: ``command`` is "ping", "verify", "activate",
    "reboot", "confirm", "rollback", "abort" or "set_logging"."""

    command: str


@dataclass(frozen=True, kw_only=True)
class BaudChanged(Event):
    """``change_baud()`` completed: both ends now talk at ``baud``."""

    baud: int


@dataclass(frozen=True, kw_only=True)
class BaudChangeFailed(Event):
    """``change_baud()`` failed safely: the device did not hear us at ``requested``; both ends are back at
    ``baud`` (the old rate) and the connection is usable."""

    requested: int
    baud: int


@dataclass(frozen=True, kw_only=True)
class TransferStarted(Event):
    """The device accepted BEGIN: the data phase starts at uncompressed offset ``resumed_from``."""

    size: int
    resumed_from: int
    window: int
    block_size: int
    compressed: bool


@dataclass(frozen=True, kw_only=True)
class TransferComplete(Event):
    """``begin_transfer()`` completed: every byte is on the device.

    ``wire_bytes`` counts every byte of DATA frames written (framing and retransmissions included);
    ``payload_bytes`` is the size of the (possibly compressed) stream; ``retransmits`` counts blocks sent
    again."""

    size: int
    resumed_from: int
    wire_bytes: int
    payload_bytes: int
    retransmits: int


@dataclass(frozen=True, kw_only=True)
class SlotErased(Event):
    """``erase()`` completed: ``erased`` bytes of ``slot`` read 0xFF.  ``resetting``: the device erased the image
    it was running and resets now (into its bootloader)."""

    slot: int
    erased: int
    resetting: bool


@dataclass(frozen=True, kw_only=True)
class SlotRead(Event):
    """``read()`` completed: ``data`` is ``slot``'s bytes from slot-relative ``offset``."""

    slot: int
    offset: int
    data: bytes


@dataclass(frozen=True, kw_only=True)
class SlotDigest(Event):
    """``read_digest()`` completed: the SHA-256 of ``length`` bytes of ``slot`` from ``offset``."""

    slot: int
    offset: int
    length: int
    digest: bytes


# --- device side --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class InfoRequested(Event):
    """Answer with ``reply_info(info)``."""


@dataclass(frozen=True, kw_only=True)
class TransferRequested(Event):
    """The host wants to write ``size`` bytes (SHA-256 ``digest``) into ``slot``.  Answer with
    ``accept_transfer(resume_offset)`` (an offset > 0 only when ``resume`` and the digest/size match the
    interrupted transfer the owner kept) or ``reject(status)``."""

    slot: int
    size: int
    digest: bytes
    compressed: bool
    resume: bool


@dataclass(frozen=True, kw_only=True)
class BlockReceived(Event):
    """In-order, decompressed image data at absolute image ``offset``.  Write it, then call
    ``block_written(offset + len(data))`` (may be later: that is what holds back the host's window)."""

    offset: int
    data: bytes


@dataclass(frozen=True, kw_only=True)
class TransferEnded(Event):
    """All ``size`` bytes were delivered.  Flush, then ``complete()`` (or ``reject(status)``)."""

    size: int


@dataclass(frozen=True, kw_only=True)
class VerifyRequested(Event):
    """Check the image in ``slot`` (digest, signature, key, chip, counter, size); ``complete()`` or
    ``reject(status)``."""

    slot: int


@dataclass(frozen=True, kw_only=True)
class ActivateRequested(Event):
    """Mark ``slot``'s image for a test boot (``permanent`` False) or permanently."""

    slot: int
    permanent: bool


@dataclass(frozen=True, kw_only=True)
class ConfirmRequested(Event):
    """Make the running test image permanent."""


@dataclass(frozen=True, kw_only=True)
class RollbackRequested(Event):
    """Go back to the previous image at the next reset."""


@dataclass(frozen=True, kw_only=True)
class RebootRequested(Event):
    """Call ``complete()``, let the reply drain, then reset."""


@dataclass(frozen=True, kw_only=True)
class EraseRequested(Event):
    """Erase every sector of ``slot`` (PROGRESS between sectors), then ``reply_erase(erased, resetting=...)``
    or ``reject(status)``: ``SLOT_IN_USE`` for the slot the running image lives in unless ``force``."""

    slot: int
    force: bool


@dataclass(frozen=True, kw_only=True)
class ReadRequested(Event):
    """Read ``length`` bytes of ``slot`` from slot-relative ``offset``: ``reply_read(data)``, or with ``digest``
    ``reply_digest(sha256)``; ``reject(BAD_SLOT)`` for no such slot, ``reject(BAD_ARGUMENT)`` past its end."""

    slot: int
    offset: int
    length: int
    digest: bool


@dataclass(frozen=True, kw_only=True)
class AbortRequested(Event):
    """Drop the pending request / the data phase; answers to it are now ignored.  ``status`` says why:
    ``ABORTED`` when the host sent ABORT (the core already replied OK), otherwise the failure the core found
    and already reported to the host (``WINDOW_OVERFLOW``, ``DECOMPRESS_FAILED``, ``SIZE_MISMATCH``...)."""

    status: int = Status.ABORTED


@dataclass(frozen=True, kw_only=True)
class BaudChangeRequested(Event):
    """The host asks for ``baud``.  ``complete()`` to agree (the core then runs the switch handshake and
    emits :class:`~protocol.sansio.ChangeBaud`), ``reject(status)`` to refuse."""

    baud: int


@dataclass(frozen=True, kw_only=True)
class LoggingChanged(Event):
    """The host subscribed to device logs up to ``level`` (``None``: off).  Informational; the core
    already filters ``log()`` calls."""

    level: int | None
