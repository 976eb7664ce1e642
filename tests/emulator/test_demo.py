"""The README's first command: ``stm32ota demo`` updates an emulated F407 from 1.0.0 to 1.1.0."""

from __future__ import annotations

import json
import subprocess
import sys


def test_demo_updates_the_emulated_device_and_reports_phases() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "protocol", "demo", "--local", "--time-scale", "0", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["protocol"] == "ota"
    primary, secondary = result["slots_after"]
    assert (primary["version"], primary["state"]) == ("1.1.0+0", "confirmed")
    assert (secondary["version"], secondary["state"]) == ("1.0.0+0", "inactive")
    assert {p["phase"] for p in result["phases"]} >= {"transfer", "verify", "reboot"}


def test_demo_shows_device_logs_and_a_phase_report() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "protocol", "demo", "--local", "--time-scale", "0", "--baud", "921600"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert "device [INF] app: demo firmware 1.1.0" in err  # the device's own log line
    assert "new image confirmed" in err or "confirmed itself" in err
    assert "phase" in err and "transfer" in err  # the per-phase report
