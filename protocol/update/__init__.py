"""The stm32ota update protocol: framed commands, a windowed data phase, both roles as sans-I/O cores.

:class:`HostConnection` is the host role (the update flow and the CLI drive it); :class:`DeviceConnection`
is the device role (the emulated bootloader owns one).  ``docs/protocol.md`` is the specification.
"""

from __future__ import annotations

from .device import DeviceConnection
from .events import (
    AbortRequested,
    ActivateRequested,
    BaudChanged,
    BaudChangeFailed,
    BaudChangeRequested,
    BlockReceived,
    CommandComplete,
    ConfirmRequested,
    EraseRequested,
    InfoReceived,
    InfoRequested,
    LoggingChanged,
    ReadRequested,
    RebootRequested,
    RollbackRequested,
    SlotDigest,
    SlotErased,
    SlotRead,
    TransferComplete,
    TransferEnded,
    TransferRequested,
    TransferStarted,
    VerifyRequested,
)
from .frames import CorruptFrame, Frame, FrameDecoder, FrameType, encode_frame
from .host import HostConnection
from .messages import (
    LOG_OFF,
    DeviceInfo,
    FlashLayout,
    LogLevel,
    Option,
    PartialTransfer,
    SectorRun,
    SlotInfo,
    SlotRegion,
    SlotState,
)
from .status import STATUS_TABLE, Status, StatusInfo, describe, device_error

__all__ = [
    "LOG_OFF",
    "STATUS_TABLE",
    "AbortRequested",
    "ActivateRequested",
    "BaudChangeFailed",
    "BaudChangeRequested",
    "BaudChanged",
    "BlockReceived",
    "CommandComplete",
    "ConfirmRequested",
    "CorruptFrame",
    "DeviceConnection",
    "DeviceInfo",
    "EraseRequested",
    "FlashLayout",
    "Frame",
    "FrameDecoder",
    "FrameType",
    "HostConnection",
    "InfoReceived",
    "InfoRequested",
    "LogLevel",
    "LoggingChanged",
    "Option",
    "PartialTransfer",
    "ReadRequested",
    "RebootRequested",
    "RollbackRequested",
    "SectorRun",
    "SlotDigest",
    "SlotErased",
    "SlotInfo",
    "SlotRead",
    "SlotRegion",
    "SlotState",
    "Status",
    "StatusInfo",
    "TransferComplete",
    "TransferEnded",
    "TransferRequested",
    "TransferStarted",
    "VerifyRequested",
    "describe",
    "device_error",
    "encode_frame",
]
