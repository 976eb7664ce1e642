"""The sans-I/O core must never import I/O, clocks, threads or Qt."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROTOCOL = Path(__file__).resolve().parents[2] / "protocol"
FORBIDDEN = {"serial", "asyncio", "threading", "time", "PySide6", "socket", "select", "aiohttp"}
# Modules of protocol/ that are drivers or front ends, not core.
NOT_CORE = {"link.py", "aio.py", "cli.py", "console.py", "__main__.py", "flow.py"}


def _core_files() -> list[Path]:
    files = []
    for path in sorted(PROTOCOL.rglob("*.py")):
        if path.name in NOT_CORE or path.name.endswith(("_cli.py", "_commands.py")):
            continue
        files.append(path)
    return files


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(PROTOCOL)))
def test_core_module_imports_no_io(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
