"""A host that resends a command while the device is still working on it gets one answer, not BUSY.

Seen first on the emulator: after REBOOT the host polls INFO while the bootloader swaps; the INFO frame and
its resend both wait in the device's UART buffer, and the second must not be answered with BUSY."""

from __future__ import annotations

from protocol.update import DeviceConnection, HostConnection, InfoReceived, InfoRequested, Status
from protocol.update.constants import PROTOCOL_VERSION
from protocol.update.frames import Frame, FrameDecoder, FrameType

from .helpers import make_info


def _replies(data: bytes) -> list[Frame]:
    decoder = FrameDecoder()
    decoder.feed(data)
    frames = []
    while (item := decoder.next()) is not None:
        assert isinstance(item, Frame)
        frames.append(item)
    return frames


def test_resent_pending_command_is_not_answered_busy() -> None:
    host = HostConnection(first_seq=7)
    dev = DeviceConnection()
    host.device_protocol = 0x0100  # a 1.0 device: INFO at once (no PING), the whole record in one reply
    host.request_info()
    first = host.data_to_send()
    host.handle_timeout()  # the reply timer ran out: the same frame again
    resend = host.data_to_send()
    assert resend == first

    dev.receive_data(first + resend)
    assert isinstance(dev.next_event(), InfoRequested)
    assert dev.next_event() is None
    assert dev.data_to_send() == b""  # no BUSY for the copy

    dev.reply_info(make_info(dev))
    out = dev.data_to_send()
    frames = _replies(out)
    assert [f.type for f in frames] == [FrameType.REPLY]
    host.receive_data(out)
    assert isinstance(host.next_event(), InfoReceived)


def test_a_different_command_while_busy_is_still_answered_busy() -> None:
    dev = DeviceConnection()
    host = HostConnection(first_seq=1)
    host.device_protocol = PROTOCOL_VERSION  # INFO at once, without the PING
    host.request_info()
    dev.receive_data(host.data_to_send())
    assert isinstance(dev.next_event(), InfoRequested)
    other = HostConnection(first_seq=50)
    other.ping()
    other_ping = other.data_to_send()
    dev.receive_data(other_ping)
    out = dev.data_to_send()
    # PING is answered by the core itself even while INFO is pending; a second INFO with another seq is BUSY
    other2 = HostConnection(first_seq=90)
    other2.device_protocol = PROTOCOL_VERSION
    other2.request_info()
    dev.receive_data(other2.data_to_send())
    out += dev.data_to_send()
    statuses = [f.payload[1] for f in _replies(out) if f.type == FrameType.REPLY]
    assert Status.BUSY in statuses
