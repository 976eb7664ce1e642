"""The core's words in the Chinese UI: real errors from the drivers and the device, pre-flight reasons, the
flow's step messages and the result line are rendered in Chinese; an unknown sentence stays as the core wrote it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.drivers.link import open_port
from protocol.errors import DeviceError, PortError, Stm32OtaError
from protocol.update.status import Status
from updater_gui.i18n import install_language
from updater_gui.inspection import Verdict
from updater_gui.messages import error_text, flow_message, phase_label, reason_text, verdict_hint
from updater_gui.workers import ErrorInfo


@pytest.fixture
def chinese(qapp) -> Iterator[None]:  # type: ignore[no-untyped-def]
    assert install_language("zh_CN")
    yield
    install_language("en")


def _has_latin_words(text: str) -> bool:
    import re

    return bool(re.search(r"[A-Za-z]{4,}", re.sub(r"\S*[/:]\S*|stm32ota|YMODEM|IAP|STM32", "", text)))


def test_a_missing_port_is_a_sentence_in_both_languages(qapp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PortError) as caught:
        open_port(str(tmp_path / "ttyUSB0"))
    info = ErrorInfo(str(caught.value), caught.value.hint, error=caught.value)
    assert info.text() == f"There is no port {tmp_path / 'ttyUSB0'}. — check the cable and the port name"
    install_language("zh_CN")
    try:
        shown = info.text()
    finally:
        install_language("en")
    assert shown.startswith("没有端口") and "数据线" in shown and not _has_latin_words(shown), shown
    assert info.english().startswith("no such port")  # the log keeps the core's English


@pytest.mark.usefixtures("chinese")
def test_device_statuses_reasons_and_flow_steps_are_chinese() -> None:
    for status in (Status.NO_ROLLBACK, Status.NOT_CONFIRMABLE, Status.WRONG_CHIP):
        text = error_text(DeviceError("device: ...", status=status))
        assert not _has_latin_words(text), text
    shown = reason_text("downgrade", "downgrade: the image is version 1.0.0, the device runs 1.1.0")
    assert shown == "这是降级：固件版本为 1.0.0，设备运行 1.1.0"  # noqa: RUF001 - Chinese punctuation
    assert not _has_latin_words(reason_text("bad-signature", "bad-signature: the signature does not verify"))
    assert "允许降级" in str(verdict_hint(Verdict(ok=False, reason="x", slug="downgrade")))
    sending = flow_message("sending 262144 bytes (windowed, 8 in flight) at 921600 baud")
    assert sending == "正在以 921600 波特发送 262144 字节"
    preparing = flow_message("preparing the download slot (the device erases it)")
    assert preparing == "正在准备下载分区（设备擦除中）"  # noqa: RUF001 - Chinese punctuation
    assert phase_label("transfer") == "传输" or not _has_latin_words(phase_label("transfer"))
    assert flow_message("something new the core says") == "something new the core says"  # never hidden


def test_the_flows_messages_are_mapped(qapp) -> None:  # type: ignore[no-untyped-def]
    """The sentences protocol/flow.py writes for each phase start and end (a changed sentence fails here)."""
    import inspect
    import re

    import protocol.flow as flow

    source = inspect.getsource(flow)
    plain = re.findall(r'ctx\.(?:start|end)\((?:Phase\.\w+, )?"([^"{]+)"', source)
    assert len(plain) >= 8
    install_language("zh_CN")
    try:
        untranslated = [m for m in plain if flow_message(m) == m]
    finally:
        install_language("en")
    assert not untranslated, untranslated


def test_an_unknown_error_keeps_the_cores_sentence(qapp) -> None:  # type: ignore[no-untyped-def]
    assert error_text(Stm32OtaError("the frobnicator is out of sync")) == "the frobnicator is out of sync"
