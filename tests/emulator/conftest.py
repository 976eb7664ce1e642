"""Fixtures that start emulators in-process (see :mod:`emulator.testing`).

``emulator_factory(mode=..., chip=..., baud=..., faults=..., time_scale=0, state_dir=...)`` starts one and
returns its handle (``.port`` to open, ``.device`` to look inside); every emulator started is stopped at
teardown.  ``iap_emulator`` and ``ota_emulator`` are ready-made unthrottled ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from emulator.testing import EmulatorHandle, running_emulator

EmulatorFactory = Callable[..., EmulatorHandle]


@pytest.fixture
def emulator_factory() -> Iterator[EmulatorFactory]:
    with contextlib.ExitStack() as stack:

        def start(mode: str = "ota", **kwargs: Any) -> EmulatorHandle:
            kwargs.setdefault("baud", 0)
            kwargs.setdefault("time_scale", 0.0)
            return stack.enter_context(running_emulator(mode, **kwargs))

        yield start


@pytest.fixture
def iap_emulator(emulator_factory: EmulatorFactory) -> EmulatorHandle:
    return emulator_factory("iap")


@pytest.fixture
def ota_emulator(emulator_factory: EmulatorFactory) -> EmulatorHandle:
    return emulator_factory("ota")
