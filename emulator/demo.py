"""``stm32ota demo``: an emulated STM32F407 running demo 1.0.0, updated to 1.1.0 through the whole flow."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from protocol.console import ConsoleReporter, format_flash_summary, format_next_steps, write_json
from protocol.drivers.link import SerialLink
from protocol.errors import Stm32OtaError
from protocol.flow import FlashOptions, flash_image, read_info
from protocol.update.host import HostConnection
from protocol.update.messages import DeviceInfo

from .chips import CHIPS
from .testing import running_emulator

__all__ = ["DEMO_CHIP", "cmd_demo", "demo_firmware", "factory_program"]

DEMO_CHIP = "stm32f407vg"
_FIRMWARE_DIRS = (
    Path(__file__).resolve().parent.parent / "assets" / "firmware",  # a checkout / editable install
    Path(__file__).resolve().parent / "assets",  # packaged copies
)


def demo_firmware(name: str) -> Path:
    """Path of a committed demo image, e.g. ``demo_firmware("demo-1.1.0.signed.bin")``."""
    for folder in _FIRMWARE_DIRS:
        path = folder / name
        if path.is_file():
            return path
    raise Stm32OtaError(f"demo firmware {name} not found", hint="run from a checkout installed with `pip install -e .`")


def factory_program(state_dir: Path, image: bytes, chip_name: str = DEMO_CHIP) -> None:
    """Write ``image`` into the primary slot of a blank chip's ``flash.bin``, as a factory programmer
    (SWD) would before the board ever boots.  An image with no trailer in the primary slot is a confirmed
    image to an MCUboot-style bootloader."""
    chip = CHIPS[chip_name]
    primary_start, primary_size = chip.layout.primary
    if len(image) > primary_size:
        raise Stm32OtaError(f"image of {len(image)} bytes does not fit the {primary_size}-byte primary slot")
    flash = bytearray(b"\xff" * chip.flash_size)
    offset = primary_start - chip.flash_base
    flash[offset : offset + len(image)] = image
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "flash.bin").write_bytes(bytes(flash))


def _slots_line(info: DeviceInfo) -> str:
    return "; ".join(f"slot {s.index}: {s.version_text} {s.state.name.lower()}" for s in info.slots)


def cmd_demo(args: argparse.Namespace) -> int:
    image_path = Path(args.image) if args.image else demo_firmware("demo-1.1.0.signed.bin")
    new_image = image_path.read_bytes()
    old_image = demo_firmware("demo-1.0.0.signed.bin").read_bytes()
    reporter = ConsoleReporter(quiet=args.json)

    on_event = reporter
    with tempfile.TemporaryDirectory(prefix="stm32ota-demo-") as tmp:
        state_dir = Path(args.state) if args.state else Path(tmp)
        factory_program(state_dir, old_image)
        reporter.message(f"-- emulated {DEMO_CHIP.upper()} at {args.baud} baud, state in {state_dir}")
        with running_emulator(
            mode="ota",
            chip=DEMO_CHIP,
            baud=args.baud,
            latency_ms=args.latency_ms,
            time_scale=args.time_scale,
            state_dir=state_dir,
        ) as emu:
            reporter.message(f"-- device port {emu.port}")
            with SerialLink(emu.port, args.baud) as link:
                before = link.execute(read_info(HostConnection(baud=args.baud), time.monotonic, on_event))
                reporter.message(f"-- before: {_slots_line(before)}")
                options = FlashOptions(protocol="ota", baud=args.baud, compress=args.compress)
                result = link.execute(
                    flash_image(new_image, options, on_event=on_event, clock=time.monotonic, name=image_path.name)
                )
                after = result.info_after
                assert after is not None
                reporter.message(f"-- after:  {_slots_line(after)}")
    reporter.close()
    if args.json:
        write_json(result.to_json())
    else:
        sys.stderr.write(format_flash_summary(result) + "\n" + format_next_steps(result, "PORT") + "\n")
    return 0
