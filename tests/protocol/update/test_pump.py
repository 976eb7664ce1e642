"""The host core under the real driver loop (protocol.pump): a baud switch writes SYNC only after SetBaud."""

from __future__ import annotations

from protocol.pump import Read, SetBaud, Write, pump
from protocol.update import BaudChanged, DeviceConnection, FrameType, HostConnection

from .helpers import Owner


def test_sync_is_written_at_the_new_rate() -> None:
    host = HostConnection(first_seq=1)
    dev = DeviceConnection(baud_rates=(115200, 921600))
    owner = Owner(dev=dev)
    host.change_baud(921600)
    steps = pump(host, 0.0, until=lambda e: isinstance(e, BaudChanged))
    log: list[tuple[str, int]] = []
    now = 0.0
    reply = None
    result = None
    for _ in range(100):
        try:
            request = steps.send(reply)
        except StopIteration as stop:
            result = stop.value
            break
        reply = None
        if isinstance(request, Write):
            log.append(("write", request.data[1]))
            dev.receive_data(request.data)
            owner.service()
        elif isinstance(request, SetBaud):
            log.append(("baud", request.baud))
        elif isinstance(request, Read):
            if request.out:
                log.append(("write", request.out[1]))
                dev.receive_data(request.out)
                owner.service()
            now += request.wait
            reply = (dev.data_to_send(), now)
    assert result == BaudChanged(baud=921600)
    assert log == [("write", FrameType.CHANGE_BAUD), ("baud", 921600), ("write", FrameType.SYNC)]


def test_device_reply_drains_before_its_switch() -> None:
    from protocol.sansio import ChangeBaud, Event
    from protocol.update import BaudChangeRequested

    dev = DeviceConnection(baud_rates=(115200, 921600))
    host = HostConnection(first_seq=1)
    host.change_baud(921600)
    dev.receive_data(host.data_to_send())

    def owner(event: Event) -> None:
        if isinstance(event, BaudChangeRequested):
            dev.complete()

    steps = pump(dev, 0.0, until=lambda e: isinstance(e, ChangeBaud), on_event=owner)
    log: list[tuple[str, int]] = []
    reply = None
    for _ in range(20):
        try:
            request = steps.send(reply)
        except StopIteration:
            break
        reply = None
        if isinstance(request, Write):
            log.append(("write", request.data[1]))
        elif isinstance(request, SetBaud):
            log.append(("baud", request.baud))
        elif isinstance(request, Read):
            if request.out:
                log.append(("write", request.out[1]))
            reply = (b"", request.wait)
    assert log == [("write", FrameType.REPLY), ("baud", 921600)]
