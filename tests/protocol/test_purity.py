"""The sans-I/O core must never import I/O, clocks, threads or Qt -- nor, through our own modules, the
drivers or the command line that do.

The core is every module of ``protocol/`` except the drivers package (``protocol/drivers/``) and the command
line (the ``protocol/cli/`` package, or the top-level CLI modules ``cli``, ``console``, ``__main__``,
``*_cli``, ``*_commands``).  A new module is core unless it lives there: nobody has to remember to add it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROTOCOL = Path(__file__).resolve().parents[2] / "protocol"
FORBIDDEN = {"serial", "asyncio", "threading", "time", "PySide6", "socket", "select", "aiohttp", "selectors"}
NOT_CORE_PACKAGES = {"drivers", "cli"}
NOT_CORE_MODULES = {"cli", "console", "__main__"}
NOT_CORE_SUFFIXES = ("_cli", "_commands")


def _module_name(path: Path) -> str:
    parts = ["protocol", *path.relative_to(PROTOCOL).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_core(module: str) -> bool:
    """``module`` is a dotted name inside ``protocol``."""
    parts = module.split(".")[1:]
    if not parts:
        return True  # protocol/__init__.py
    if parts[0] in NOT_CORE_PACKAGES:
        return False
    return not (len(parts) == 1 and (parts[0] in NOT_CORE_MODULES or parts[0].endswith(NOT_CORE_SUFFIXES)))


def _core_files() -> list[Path]:
    return [path for path in sorted(PROTOCOL.rglob("*.py")) if _is_core(_module_name(path))]


def _imports(path: Path) -> list[str]:
    """Every absolute module name ``path`` imports (relative imports resolved, ``from . import x`` as
    ``package.x``)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            names.append(prefix)
            names += [f"{prefix}.{alias.name}" for alias in node.names]  # a submodule, or a name (harmless)
    return names


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(PROTOCOL)))
def test_core_module_imports_no_io(path: Path) -> None:
    for name in _imports(path):
        assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(PROTOCOL)))
def test_core_module_imports_no_driver_or_cli_module(path: Path) -> None:
    for name in _imports(path):
        if name.split(".")[0] != "protocol":
            continue
        # "protocol.x.y" may be a module or a name in module protocol.x: judge the longest part that is a module
        parts = name.split(".")
        while len(parts) > 1 and not _exists(parts):
            parts.pop()
        target = ".".join(parts)
        assert _is_core(target), f"{_module_name(path)} (core) imports {target}, which is not core"


def _exists(parts: list[str]) -> bool:
    base = PROTOCOL.joinpath(*parts[1:])
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def test_the_core_is_found_by_package_and_the_drivers_are_not_in_it() -> None:
    core = {_module_name(p) for p in _core_files()}
    assert {"protocol.pump", "protocol.flow", "protocol.update.host", "protocol.wirelog"} <= core
    assert not any(name.startswith("protocol.drivers") for name in core)
    assert _imports(PROTOCOL / "update" / "host.py")  # the resolver sees its imports at all
    assert "protocol.wirelog" in _imports(PROTOCOL / "update" / "host.py")
