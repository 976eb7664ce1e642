"""The refcount guard outlasts a burst of signals (see updater_gui/qtfix.py for the binding bug it covers)."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal

from updater_gui import qtfix


class _Emitter(QObject):
    fired = Signal(object)


def test_many_signals_do_not_exhaust_true_and_false(qapp) -> None:
    qtfix.install()
    emitter = _Emitter()
    got = []
    emitter.fired.connect(got.append)
    for i in range(20_000):  # without the guard, PySide6 6.12 on Python 3.11 aborts after a few hundred
        emitter.fired.emit(i)
        if i % 5000 == 0:
            qtfix.top_up()
    assert len(got) == 20_000
    if qtfix.NEEDED:
        assert sys.getrefcount(True) > 1000 and sys.getrefcount(False) > 1000 and sys.getrefcount(None) > 1000
