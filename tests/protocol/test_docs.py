"""The documents a new user and a new contributor read first stay true: README lists every command,
docs/architecture.md names every module and package of ``protocol/``."""

from __future__ import annotations

import re
from pathlib import Path

from protocol.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> set[str]:
    """The commands this tree declares: protocol's own families and the entry points in its pyproject.toml
    (the installed metadata may belong to another checkout)."""
    import tomllib

    from protocol.cli import FAMILIES

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["stm32ota.commands"]
    subparsers = next(a for a in build_parser(["--help"])._actions if a.dest == "command")
    own = {name for names in FAMILIES.values() for name in names}
    assert own <= set(subparsers.choices or ())
    return own | set(declared)


def test_the_readme_lists_every_command() -> None:
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Commands") : text.index("## Layout")]
    listed = set(re.findall(r"^\| `([a-z][a-z-]*)", table, re.M)) | set(re.findall(r"`([a-z][a-z-]*)`", table))
    missing = _commands() - listed
    assert not missing, f"README.md's command table lacks {sorted(missing)}"


def test_architecture_md_names_every_part_of_protocol() -> None:
    # before: it showed protocol/link.py, aio.py, trace.py at the top level ("moving to protocol/drivers/")
    text = (ROOT / "docs" / "architecture.md").read_text()
    protocol = ROOT / "protocol"
    parts = {p.name for p in protocol.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    parts |= {p.name for p in protocol.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    for part in sorted(parts):
        name = f"{part}/" if (protocol / part).is_dir() else part
        assert f"protocol/{name}" in text or f"`{name}`" in text, f"docs/architecture.md does not mention {name}"
    for stale in ("protocol/link.py", "protocol/aio.py", "protocol/trace.py", "protocol/cli.py", "protocol/ymodem.py"):
        assert stale not in text, f"docs/architecture.md still names {stale}, which no longer exists"
    for module in ("link.py", "aio.py", "trace.py"):
        assert (protocol / "drivers" / module).exists() and module in text
