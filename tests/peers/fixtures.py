"""pytest fixtures for the real peers.  Import them into a conftest: ``from tests.peers.fixtures import goosebit``.

``goosebit``: a gooseBit 0.2.12 of the test's own on 127.0.0.1 (SQLite in the test's tmp_path, device auth
``strict``), as a started :class:`tests.peers.goosebit.GooseBit`: ``base_url``, ``ddi_root``,
``controller_url(cid)``, ``add_device(cid, token=None) -> token``, ``upload_software(swu, filename) -> id``,
``assign(cid, software_id)``, ``create_rollout(software_id)``, ``device(cid)``.  Skipped with the reason on a
machine without the venv, a failure under CI.  Build bundles with :func:`tests.peers.swu.build_swu`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers.goosebit import GooseBit, require_goosebit


@pytest.fixture
def goosebit(tmp_path: Path) -> Iterator[GooseBit]:
    python = require_goosebit()
    with GooseBit(python, tmp_path / "goosebit", device_auth="strict") as server:
        yield server
