"""The durability benchmark (benchmarks/durability.py) in a tiny configuration, so that it cannot rot.

The small demo image, instant flash, one run per mode.  No timing assertions: only that both modes delivered
and a ratio came out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "durability.py"
IMAGE = REPO / "assets" / "firmware" / "demo-1.1.0.signed.bin"
RUN_TIMEOUT_S = 180


def test_durability_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "durability.json"
    args = ["--repeat", "1", "--time-scale", "0", "--kinds", "data", "--image", str(IMAGE), "--json", str(out)]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [(r["kind"], r["time_scale"]) for r in rows] == [("data", 0.0)]
    assert rows[0]["ratio"] > 0 and "ratio" in done.stdout
