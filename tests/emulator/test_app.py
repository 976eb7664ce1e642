"""The emulated application: banner, self-test, heartbeats, boot_set_confirmed."""

from __future__ import annotations

import struct

import pytest

from emulator.app import FAIL_MARKER, EmulatedApp, self_test
from emulator.chips import CHIPS, SRAM_BASE
from protocol.image import VerifiedImage, load_private_key, load_public_key, sign_image, verify_image
from protocol.update import SlotState
from protocol.update.messages import LogLevel

from .chip_harness import DEV_KEY, DEV_PUB, Chip, command, info, make_image, update

F407 = CHIPS["stm32f407vg"]


def _verified(image: bytes) -> VerifiedImage:
    return verify_image(image, keys=[load_public_key(DEV_PUB.read_bytes())])


def _raw_image(payload: bytes) -> bytes:
    return sign_image(
        payload, load_private_key(DEV_KEY.read_bytes()), version="3.2.1", header_size=0x200, pad_header=True
    )


def test_self_test_checks_the_vector_table() -> None:
    ok, detail = self_test(_verified(make_image()), F407)
    assert ok and "vector table ok" in detail
    bad_sp = _raw_image(struct.pack("<II", 0x10000000, 0x08020301) + bytes(64))
    assert self_test(_verified(bad_sp), F407) == (False, "initial stack pointer 0x10000000 is outside SRAM")
    arm_mode = _raw_image(struct.pack("<II", SRAM_BASE + 0x100, 0x08020300) + bytes(64))
    assert not self_test(_verified(arm_mode), F407)[0]
    elsewhere = _raw_image(struct.pack("<II", SRAM_BASE + 0x100, 0x08000301) + bytes(64))
    assert not self_test(_verified(elsewhere), F407)[0]
    assert self_test(_verified(_raw_image(b"\x00" * 4)), F407) == (False, "no vector table")
    marked = make_image(fill=FAIL_MARKER)
    assert self_test(_verified(marked), F407) == (False, "the image asked for a failing self-test")


def _run_app(
    *, under_test: bool, auto_confirm: bool = True, image: bytes | None = None
) -> tuple[EmulatedApp, list[tuple[int, str]], list[int]]:
    lines: list[tuple[int, str]] = []
    confirms: list[int] = []

    def confirm() -> bool:
        confirms.append(1)
        return True

    app = EmulatedApp(
        _verified(image or make_image(version="2.5.0")),
        F407,
        under_test=under_test,
        say=lambda level, text: lines.append((level, text)),
        confirm=confirm,
        auto_confirm=auto_confirm,
        self_test_delay=0.5,
        heartbeat_interval=2.0,
    )
    app.start(10.0)
    for t in range(11, 16):
        app.tick(float(t))
    return app, lines, confirms


def test_banner_self_test_heartbeats_and_confirm() -> None:
    app, lines, confirms = _run_app(under_test=True)
    texts = [t for _, t in lines]
    assert texts[0] == "app: demo firmware 2.5.0+0 on STM32F407VG (test boot, not confirmed yet)"
    assert any(t.startswith("app: self-test passed") for t in texts)
    assert "app: image 2.5.0+0 confirmed (boot_set_confirmed)" in texts
    assert confirms == [1] and app.confirmed and app.self_test_passed
    assert app.heartbeats == 2 and sum("heartbeat" in t for t in texts) == 2
    assert all(level == LogLevel.INFO for level, _ in lines)


def test_a_confirmed_image_is_not_confirmed_again_and_auto_confirm_can_be_off() -> None:
    _, _, confirms = _run_app(under_test=False)
    assert confirms == []
    app, lines, confirms = _run_app(under_test=True, auto_confirm=False)
    assert confirms == [] and not app.confirmed
    assert any("self-test passed" in t for _, t in lines)


def test_a_failing_self_test_is_logged_as_an_error_and_does_not_confirm() -> None:
    app, lines, confirms = _run_app(under_test=True, image=make_image(fill=FAIL_MARKER))
    assert confirms == [] and app.self_test_passed is False
    assert (
        LogLevel.ERROR,
        "app: self-test FAILED: the image asked for a failing self-test; not confirming (reset reverts)",
    ) in lines


@pytest.mark.parametrize("fail", [False, True])
def test_on_the_chip_a_failing_self_test_means_revert(fail: bool) -> None:
    old = make_image(version="1.0.0", counter=1)
    new = make_image(version="1.1.0", counter=2, fill=FAIL_MARKER if fail else b"")
    chip = Chip(primary=old)
    update(chip, new)
    assert info(chip).slot(0).state is (SlotState.ACTIVE if fail else SlotState.CONFIRMED)
    command(chip, "reboot")
    chip.settle()
    assert info(chip).slot(0).version == ((1, 0, 0, 0) if fail else (1, 1, 0, 0))
