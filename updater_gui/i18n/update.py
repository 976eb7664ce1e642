"""Keep the translations in step: ``python -m updater_gui.i18n.update``.

Runs ``pyside6-lupdate`` over the app's modules (new strings land in the ``.ts`` files as unfinished, for Qt
Linguist), then ``pyside6-lrelease`` to compile each ``.ts`` into the ``.qm`` the app loads.  Commit both;
``tests/updater_gui/test_i18n.py`` fails when they drift.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from . import LANGUAGES, TRANSLATIONS_DIR

__all__ = ["lrelease", "lupdate", "main", "sources", "ts_path"]

PACKAGE = TRANSLATIONS_DIR.parent


def sources() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


def ts_path(language: str) -> Path:
    return TRANSLATIONS_DIR / f"stm32ota_{language}.ts"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not on PATH (it ships with PySide6-Essentials)")
    return found


def lupdate(ts: Path) -> str:
    result = subprocess.run(
        [_tool("pyside6-lupdate"), "-no-obsolete", "-locations", "none", *map(str, sources()), "-ts", str(ts)],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout + result.stderr


def lrelease(ts: Path, qm: Path) -> None:
    subprocess.run([_tool("pyside6-lrelease"), str(ts), "-qm", str(qm)], capture_output=True, check=True)


def main() -> int:
    for language in LANGUAGES:
        if language == "en":
            continue
        ts = ts_path(language)
        sys.stdout.write(lupdate(ts))
        lrelease(ts, ts.with_suffix(".qm"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
