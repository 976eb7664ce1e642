"""Shared test helpers.

Peer tools (lrzsz, imgtool, the PyPI ``ymodem`` package) skip with a reason on a laptop that lacks them, but
under ``CI`` a missing peer is a failure, never a skip.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

IN_CI = bool(os.environ.get("CI"))


def _missing(what: str, how: str) -> None:
    message = f"{what} is not installed ({how})"
    if IN_CI:
        pytest.fail(f"peer required under CI: {message}", pytrace=False)
    pytest.skip(message)


def require_tool(name: str, how: str = "apt-get install lrzsz") -> str:
    """Path of executable ``name``; skips (or fails under CI) when it is missing."""
    path = shutil.which(name)
    if path is None:
        _missing(name, how)
        raise AssertionError("unreachable")
    return path


def require_module(name: str, how: str | None = None) -> None:
    """Skip (or fail under CI) when Python module ``name`` cannot be imported."""
    if importlib.util.find_spec(name) is None:
        _missing(f"python module {name}", how or f"pip install {name}")
