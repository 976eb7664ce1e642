"""Ports found by USB VID:PID or by a path glob, with hot-plug: a board plugged in later is picked up, one
unplugged is reported (status, metrics, log, and to the server if a job was running), and a job cut by an
unplug finishes from the device's resume record when the board comes back — on another tty, as a re-plugged
USB adapter does, under the same by-id name.

No USB device can exist on a test box, so the USB enumeration is the one part stood in for: a *comports*
source (what :func:`serial.tools.list_ports.comports` returns: pyserial's own ``ListPortInfo``) that lists the
real ptys of real emulators as they start and stop.  The glob tests use real symlinks to emulator ptys, as
``/dev/serial/by-id`` holds."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest
from serial.tools.list_ports_common import ListPortInfo

from emulator.demo import demo_firmware
from relay.gateway import ConfigError, Gateway, PortConfig, load_config
from relay.gateway.discovery import PortScanner

from .conftest import DEV_PUB, cid_for, emulated_device, gateway_for, primary_version, wait_for
from .ourserver import running_server

STM = (0x0483, 0x5740)
BIG = demo_firmware("demo-big-1.2.0.signed.bin").read_bytes()
BAUD = 460800


def _usb(port: str, vid_pid: tuple[int, int] = STM, serial: str | None = None) -> ListPortInfo:
    info = ListPortInfo(port, skip_link_detection=True)
    info.vid, info.pid = vid_pid
    info.serial_number = serial
    return info


class Comports:
    """A comports() whose answer the test changes: the boards now on the bus."""

    def __init__(self) -> None:
        self.ports: list[ListPortInfo] = []

    def __call__(self) -> list[ListPortInfo]:
        return list(self.ports)


def test_a_scan_matches_vid_pid_serial_number_and_globs(tmp_path: Path) -> None:
    (tmp_path / "usb-STMicro-A").symlink_to("/dev/null")
    (tmp_path / "usb-STMicro-gone").symlink_to(tmp_path / "nothing")  # dangling: an unplugged board
    (tmp_path / "usb-FTDI-B").symlink_to("/dev/null")
    source = Comports()
    source.ports = [_usb("/dev/ttyACM0", serial="S1"), _usb("/dev/ttyACM1", serial="S2"), _usb("/dev/ttyUSB0", (1, 2))]
    rules = [
        PortConfig(usb="0483:5740", serial_number="S2", baud=921600),
        PortConfig(glob=str(tmp_path / "usb-STMicro*")),
    ]
    found = PortScanner(rules, source).scan()
    assert sorted(found) == ["/dev/ttyACM1", str(tmp_path / "usb-STMicro-A")]
    assert found["/dev/ttyACM1"].baud == 921600 and not found["/dev/ttyACM1"].discovered
    assert sorted(PortScanner([PortConfig(usb="0483:5740")], source).scan()) == ["/dev/ttyACM0", "/dev/ttyACM1"]


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ('usb = "0483"', "VID:PID"),
        ('usb = "0483:5740"\nurl = "/dev/x"', "exactly one of url, usb or glob"),
        ('serial_number = "S"\nurl = "/dev/x"', "serial_number narrows"),
        ('usbb = "0483:5740"', "did you mean 'usb'"),
    ],
)
def test_bad_port_rules_are_clear_errors(tmp_path: Path, table: str, match: str) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(f'server = "http://x"\n[[port]]\n{table}\n')
    with pytest.raises(ConfigError, match=match):
        load_config(path)


async def test_usb_boards_plugged_in_later_are_picked_up_and_an_unplugged_one_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay.gateway")
    source = Comports()
    config = load_config(
        None,
        server="http://127.0.0.1:9",  # no server: discovery and INFO do not need one
        ports=[PortConfig(usb="0483:5740")],
        state_dir=tmp_path / "gw",
        listen="127.0.0.1:0",
        discovery_interval=0.1,
    )
    with (
        emulated_device(tmp_path / "d1", 1) as one,
        emulated_device(tmp_path / "d2", 2) as two,
        emulated_device(tmp_path / "d3", 3) as other,
    ):
        source.ports = [_usb(one.port), _usb(other.port, (0x10C4, 0xEA60))]  # a CP210x: not ours
        async with Gateway(config, comports=source) as gateway:
            await wait_for(lambda: cid_for(1) in gateway.by_controller, "the board on the bus at start")
            source.ports.append(_usb(two.port))  # plugged in later
            await wait_for(lambda: cid_for(2) in gateway.by_controller, "the board plugged in later")
            assert [w.port.url for w in gateway.workers] == [one.port, two.port]
            source.ports.pop(0)  # unplugged
            await wait_for(lambda: gateway.workers[0].status.state == "unplugged", "the unplug")
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{gateway.status_url}/status") as response:
                    status = await response.json()
                async with http.get(f"{gateway.status_url}/metrics") as response:
                    metrics = await response.text()
    assert [(p["url"], p["state"]) for p in status["ports"]] == [(one.port, "unplugged"), (two.port, "idle")]
    assert status["rules"] == ["usb 0483:5740"]
    assert 'stm32ota_gateway_port_events_total{event="plugged"} 2.0' in metrics
    assert 'stm32ota_gateway_port_events_total{event="unplugged"} 1.0' in metrics
    assert 'stm32ota_gateway_ports{state="unplugged"} 1.0' in metrics
    assert any(f"port {one.port}: unplugged ({cid_for(1)})" in r.getMessage() for r in caplog.records)


async def test_a_board_unplugged_mid_transfer_is_reported_and_finished_when_it_comes_back_on_another_tty(
    tmp_path: Path,
) -> None:
    """The by-id link points at one pty, is removed (unplugged), then points at the new pty of the same
    board (its flash and resume record kept in its state folder): the job resumes, not restarts."""
    cid, state, links = cid_for(1), tmp_path / "device", tmp_path / "by-id"
    links.mkdir()
    link = links / "usb-STMicro_Virtual_COM_Port_0001-if00"
    async with running_server(tmp_path / "server", DEV_PUB) as server:
        await server.api("POST", "/api/v1/devices", {"controller_id": cid, "chip": "0x413"})
        token = (await server.api("POST", "/api/v1/gateway-tokens", {"gateway": "gw", "devices": [cid]}))["token"]
        await server.api("POST", "/api/v1/releases?filename=demo-big.signed.bin", data=BIG)
        rule = PortConfig(glob=str(links / "usb-STMicro*"), baud=BAUD)
        gateway = gateway_for(server.url, [rule], tmp_path / "gw", gateway_token=token, discovery_interval=0.1)
        await gateway.start()
        try:
            with emulated_device(state, 1, baud=BAUD) as emu:  # paced: the 252 KiB transfer takes seconds
                link.symlink_to(emu.port)
                await wait_for(lambda: cid in gateway.by_controller, "the board")
                await server.api("POST", "/api/v1/actions", {"controller_id": cid, "release": "1.2.0", "forced": True})
                worker = gateway.by_controller[cid]
                worker.wake()
                await wait_for(lambda: worker.status.phase == "transfer" and worker.status.progress > 0.3, "transfer")
                link.unlink()  # unplugged: the link goes first, then the board
                await wait_for(lambda: worker.unplugged, "the unplug noticed")
            assert "during transfer" in worker.status.message
            with emulated_device(state, 1, baud=BAUD) as emu:  # back, on a new pty
                link.symlink_to(emu.port)
                await wait_for(lambda: _final(gateway), "the job to finish after the re-plug", 120)
                await wait_for(lambda: _empty(gateway), "every result delivered")
                await gateway.stop()
                after = primary_version(emu, BAUD)
        finally:
            await gateway.stop()
        shown = await server.api("GET", f"/api/v1/devices/{cid}")
    details = [line for e in gateway.delivered if e.kind == "feedback" for line in e.body["status"].get("details", [])]
    assert any("unplugged from" in line and "during transfer" in line for line in details), details
    assert any("resumed at byte" in line for line in details), details  # from the resume record, not byte 0
    assert [a["status"] for a in shown["actions"]] == ["finished"]
    assert after == ("1.2.0+0", "confirmed")
    assert [w.status.state for w in gateway.workers] == ["idle"]  # the unplugged row gave way to the board


async def _final(gateway: object) -> bool:
    jobs = await gateway.journal.jobs()  # type: ignore[attr-defined]
    return bool(jobs and jobs[0].final)


async def _empty(gateway: object) -> bool:
    return bool(await gateway.journal.backlog() == 0)  # type: ignore[attr-defined]
