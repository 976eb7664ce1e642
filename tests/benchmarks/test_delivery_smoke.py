"""The delivery benchmark (benchmarks/delivery.py) in a tiny configuration, so that it cannot rot.

One configuration (921600 baud, no latency, instant flash), the small demo images, every kind of run.  No
timing assertions: only that each run delivered the image and reported a number and a table row.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_module, require_tool

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "delivery.py"
FIRMWARE = REPO / "assets" / "firmware"
KINDS = ("flash-raw", "flash-deflate", "flash-e2e", "flash-e2e-used", "send", "sb", "sb-1k", "ymodem")
RUN_TIMEOUT_S = 180


def test_delivery_benchmark_smoke(tmp_path: Path) -> None:
    require_tool("sb")
    require_module("ymodem")
    out = tmp_path / "delivery.json"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--baud",
            "921600",
            "--latency",
            "0",
            "--time-scale",
            "0",
            "--kinds",
            ",".join(KINDS),
            "--e2e-all",
            "--ota-image",
            str(FIRMWARE / "demo-1.1.0.signed.bin"),
            "--iap-image",
            str(FIRMWARE / "demo-1.1.0.bin"),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    document = json.loads(out.read_text())
    results = document["results"]
    assert [r["kind"] for r in results] == list(KINDS)
    for result in results:
        assert result["ok"], result
        assert result["error"] is None
        assert result["seconds"] > 0
        assert result["fraction"] > 0
        assert (result["baud"], result["latency_ms"], result["time_scale"]) == (921600, 0.0, 0.0)
    assert results[2]["extra"]["running_after"].startswith("1.1.0")
    assert results[3]["extra"]["running_after"].startswith("1.1.0")
    for kind in KINDS:
        assert any(line.split()[1:3] == [kind, "921600"] for line in done.stdout.splitlines()), done.stdout


def test_delivery_benchmark_rejects_unknown_kind() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--kinds", "flash-raw,teleport"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert "teleport" in done.stderr
