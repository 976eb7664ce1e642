"""``PUT configData`` (hawkBit ``DdiConfigData``, ``DdiUpdateMode``): ``{"mode": merge|replace|remove,
"data": {str: str}}``, ``mode`` defaulting to merge.  hawkBit links ``configData`` from the poll while it wants
the attributes (a new device), and drops the link once they are there.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.relay.ddi_conformance.adapters import Device, ServerUnderTest
from tests.relay.ddi_conformance.ddi_client import call

BOARD = {"hw_boardname": "stm32-gw", "hw_revision": "1.0"}


def put(device: Device, body: Any) -> int:
    return device.put("/configData", body).status


def test_config_data_is_accepted_and_the_link_goes(device: Device) -> None:
    assert "configData" in device.get().json().get("_links", {})
    assert put(device, {"mode": "merge", "data": {**BOARD, "sw_version": "1.0.0"}}) == 200
    assert "configData" not in device.get().json().get("_links", {})


def test_config_data_mode_defaults_to_merge(device: Device) -> None:
    assert put(device, {"data": BOARD}) == 200


def test_config_data_merge_keeps_earlier_keys(sut: ServerUnderTest, device: Device) -> None:
    assert put(device, {"mode": "merge", "data": {**BOARD, "chip": "STM32F407"}}) == 200
    assert put(device, {"mode": "merge", "data": {"bootloader": "2.1.0"}}) == 200
    assert sut.attributes(device) == {**BOARD, "chip": "STM32F407", "bootloader": "2.1.0"}


def test_config_data_replace_drops_other_keys(sut: ServerUnderTest, device: Device) -> None:
    assert put(device, {"mode": "merge", "data": {**BOARD, "chip": "STM32F407"}}) == 200
    assert put(device, {"mode": "replace", "data": {"bootloader": "2.1.0"}}) == 200
    assert sut.attributes(device) == {"bootloader": "2.1.0"}


def test_config_data_remove_deletes_keys(sut: ServerUnderTest, device: Device) -> None:
    assert put(device, {"mode": "merge", "data": {**BOARD, "chip": "STM32F407"}}) == 200
    assert put(device, {"mode": "remove", "data": {"chip": ""}}) == 200
    assert sut.attributes(device) == BOARD


@pytest.mark.parametrize(
    "body",
    [{"mode": "append", "data": BOARD}, {"mode": "merge"}, {"mode": "merge", "data": ["a"]}, "merge"],
    ids=["bad-mode", "no-data", "data-not-object", "not-an-object"],
)
def test_malformed_config_data_is_400(device: Device, body: Any) -> None:
    assert put(device, body) == 400


def test_config_data_needs_the_token(device: Device) -> None:
    assert call("PUT", device.url + "/configData", json_body={"data": BOARD}).status == 401
