"""The window covers the link's turnaround: a discrete-event model of a full-duplex UART with latency.

Simulated time only (no clock, no timing assertion on this machine): each frame occupies its direction of
the line for ``10 * len / baud`` seconds and arrives ``latency`` later.  The real host and device cores run
on it; the data phase must reach >= 0.97 of the line limit (baud / 10 bytes/s) at 2 ms latency.
"""

from __future__ import annotations

import heapq
import struct

import pytest

from protocol.sansio import Event
from protocol.update import DeviceConnection, HostConnection, TransferComplete
from protocol.update.constants import FRAME_OVERHEAD
from protocol.update.frames import FrameType

from .helpers import Owner, image_bytes


def _frames(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from("<H", data, pos + 3)
        out.append(data[pos : pos + FRAME_OVERHEAD + length])
        pos += FRAME_OVERHEAD + length
    return out


def simulate(baud: int, latency: float, size: int, **kwargs: object) -> tuple[float, TransferComplete]:
    host = HostConnection(baud=baud, first_seq=1)
    dev = DeviceConnection(max_window=16)
    owner = Owner(dev=dev)
    queue: list[tuple[float, int, str, bytes]] = []
    tx_free = {"host": 0.0, "dev": 0.0}
    counter = 0
    now = 0.0
    data_start = data_end = None

    def send(side: str, data: bytes) -> None:
        nonlocal counter, data_start, data_end
        for frame in _frames(data):
            start = max(now, tx_free[side])
            end = start + len(frame) * 10 / baud
            tx_free[side] = end
            if side == "host" and frame[1] == FrameType.DATA:
                data_start = start if data_start is None else data_start
                data_end = end
            counter += 1
            heapq.heappush(queue, (end + latency, counter, "dev" if side == "host" else "host", frame))

    host.begin_transfer(image_bytes(size), **kwargs)  # type: ignore[arg-type]
    send("host", host.data_to_send())
    done: Event | None = None
    while queue and done is None:
        now, _, to, frame = heapq.heappop(queue)
        if to == "dev":
            dev.receive_data(frame)
            owner.service()
            send("dev", dev.data_to_send())
        else:
            host.receive_data(frame)
            while (event := host.next_event()) is not None:
                if isinstance(event, TransferComplete):
                    done = event
            send("host", host.data_to_send())
    assert isinstance(done, TransferComplete)
    assert data_start is not None and data_end is not None
    efficiency = size / (data_end - data_start) / (baud / 10)
    return efficiency, done


@pytest.mark.parametrize("baud", [115200, 921600])
@pytest.mark.parametrize("latency", [0.002, 0.016])
def test_windowed_data_phase_reaches_the_line_limit(baud: int, latency: float) -> None:
    efficiency, done = simulate(baud, latency, 384 * 1024)
    assert done.retransmits == 0
    assert efficiency >= 0.97, f"{efficiency:.4f} of the line limit"


def test_stop_and_wait_would_not() -> None:
    # the same cores with a window of 1 are YMODEM-like stop-and-wait: latency costs a large share
    efficiency, _ = simulate(921600, 0.002, 64 * 1024, window=1)
    assert efficiency < 0.75
