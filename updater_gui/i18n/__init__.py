"""Translations: Qt Linguist sources (``stm32ota_<lang>.ts``) compiled to ``.qm`` beside them."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QCoreApplication, QLocale, QTranslator

__all__ = ["LANGUAGES", "TRANSLATIONS_DIR", "install_language", "system_language"]

TRANSLATIONS_DIR = Path(__file__).parent
LANGUAGES = {"en": "English", "zh_CN": "简体中文"}
_installed: list[QTranslator] = []


def system_language() -> str:
    name = QLocale.system().name()
    return "zh_CN" if name.startswith("zh") else "en"


def install_language(language: str) -> bool:
    """Switch the running app to ``language`` (``en`` needs no file); widgets get a LanguageChange event."""
    app = QCoreApplication.instance()
    if app is None:
        return False
    while _installed:
        app.removeTranslator(_installed.pop())
    if language == "en":
        return True
    translator = QTranslator(app)
    if not translator.load(str(TRANSLATIONS_DIR / f"stm32ota_{language}.qm")):
        return False
    app.installTranslator(translator)
    _installed.append(translator)
    return True
