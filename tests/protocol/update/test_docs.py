"""docs/protocol.md cannot drift from the code: the status table and the constants are checked here.

Regenerate the status table with ``python -m tests.protocol.update.test_docs`` and paste it between the
markers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protocol.update import constants
from protocol.update.frames import FrameType
from protocol.update.status import STATUS_TABLE

DOC = Path(__file__).resolve().parents[3] / "docs" / "protocol.md"
START = "<!-- status-table:start -->"
END = "<!-- status-table:end -->"


def render_status_table() -> str:
    rows = ["| code | name | meaning | hint |", "|---|---|---|---|"]
    for code, info in sorted(STATUS_TABLE.items()):
        rows.append(f"| `0x{code:02X}` | `{info.name}` | {info.text} | {info.hint or ''} |")
    return "\n".join(rows)


def _doc() -> str:
    return DOC.read_text()


def test_status_table_matches_status_py() -> None:
    text = _doc()
    section = text[text.index(START) + len(START) : text.index(END)].strip()
    assert section == render_status_table(), "regenerate: python -m tests.protocol.update.test_docs"


@pytest.mark.parametrize("name", [n for n in constants.__all__ if isinstance(getattr(constants, n), (int, float))])
def test_every_constant_is_documented_with_its_value(name: str) -> None:
    value = getattr(constants, name)
    rendered = f"0x{value:02X}" if name in ("SOF", "PROTOCOL_VERSION") else f"{value}"
    pattern = rf"\|\s*`{name}`\s*\|\s*{re.escape(rendered)}\s*\|"
    assert re.search(pattern, _doc()), f"docs/protocol.md lacks the row | `{name}` | {rendered} |"


@pytest.mark.parametrize("ftype", list(FrameType))
def test_every_frame_type_is_documented(ftype: FrameType) -> None:
    assert re.search(rf"\|\s*`0x{int(ftype):02X}`\s*\|\s*`{ftype.name}`\s*\|", _doc())


if __name__ == "__main__":
    import sys

    sys.stdout.write(render_status_table() + "\n")
