"""``stm32ota demo``, the README's first command: server + gateway + three emulated STM32F407s, a staged
rollout, all three confirmed on 1.1.0, a summary, exit 0.  ``--local`` is still the single-device flow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .ourserver import ROOT, server_tree

DEMO_TIMEOUT_S = 240


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    paths = dict.fromkeys([str(ROOT), str(server_tree())])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run(
        [sys.executable, "-m", "protocol", "demo", "--time-scale", "0", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        check=False,
    )


def test_the_demo_rolls_1_1_0_out_to_three_devices_in_two_groups(tmp_path: Path) -> None:
    done = _run(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "a canary of one device, group 2 = the rest" in done.stderr
    assert done.stderr.count("updated and confirmed") == 3
    assert "3 of 3 devices run the new version, confirmed" in done.stderr


def test_demo_local_is_the_single_device_flow(tmp_path: Path) -> None:
    done = _run(tmp_path, "--local", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"protocol": "ota"' in done.stdout
