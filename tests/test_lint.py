"""Ruff and mypy (configured in pyproject.toml) stay clean: the house rule, checked on every run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import require_module

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    require_module("ruff")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    require_module("mypy")
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
