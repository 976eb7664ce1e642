"""The server benchmark (benchmarks/server.py) in a tiny configuration, so that it cannot rot.

A few devices, one second of wrk per server, no warm-up.  No timing assertions: only that every server that
ran answered every poll (no non-2xx, no socket errors), that a figure was reported, and that the table and the
JSON say so.  gooseBit always runs (a peer: skipped on a laptop without its venv, a failure under CI); our
server runs once `stm32ota serve` is in the tree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_tool
from tests.peers.goosebit import require_goosebit
from tests.relay.ddi_conformance.adapters import stm32ota_serve_missing

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "server.py"
RUN_TIMEOUT_S = 240


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
        cwd=REPO,
    )


def test_server_benchmark_smoke(tmp_path: Path) -> None:
    require_tool("wrk", "apt-get install wrk")
    require_goosebit()
    servers = ["goosebit"]
    if stm32ota_serve_missing(REPO) is None:
        servers.insert(0, "stm32ota")
    out = tmp_path / "server.json"
    done = _run(
        "--servers", ",".join(servers), "--devices", "25", "--duration", "1", "--warmup", "0",
        "--connections", "4", "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    document = json.loads(out.read_text())
    results = document["results"]
    assert [r["server"] for r in results] == servers
    for result in results:
        assert result["ok"], result
        assert result["error"] is None
        assert result["requests"] > 0 and result["polls_per_s"] > 0
        assert result["non_2xx"] == 0 and result["socket_errors"] == 0
        assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
        assert result["extra"]["poll_answer"]["config"]["polling"]["sleep"] == "00:05:00"
        assert any(line.split()[:2] == [result["server"], "25"] for line in done.stdout.splitlines()), done.stdout
    if len(servers) == 2:
        assert "ratio stm32ota / goosebit" in done.stdout


def test_server_benchmark_rejects_unknown_server() -> None:
    done = _run("--servers", "goosebit,hawkbit")
    assert done.returncode == 2
    assert "hawkbit" in done.stderr
