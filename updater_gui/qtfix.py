"""A guard against a PySide6 binding bug on Python < 3.12: some calls drop a reference they never took.

Measured with PySide6 6.12.0 on CPython 3.11 (6.11.3 does not have it): every ``Signal.emit()`` releases one
reference to ``True`` or ``False`` (its return value), and static void functions such as
``QCoreApplication.processEvents()`` and ``QThread.msleep()`` one to ``None``. Python 3.12 made those objects
immortal, so the bug is invisible there; on 3.11 their count reaches zero after a few hundred signals and the
interpreter aborts ("Fatal Python error: bool_dealloc"). Until the binding is fixed, :func:`install` raises the
three singletons' reference counts (which are static objects that must never be freed anyway) from a timer on
the GUI thread, well before any count can reach zero. Nothing is allocated, and nothing is released at exit (a
reserve list would hand the references back during finalisation, and abort there).

``tests/updater_gui/test_qtfix.py`` checks the reserve outlasts a burst of signals, that without it the
interpreter aborts on the versions in :data:`BROKEN_VERSIONS` (so the test tells when a release fixes it), and
that elsewhere the guard changes nothing.  The ``gui`` extra allows both (``PySide6-Essentials>=6.11,<6.13``:
the range the tests ran on).
"""

from __future__ import annotations

import ctypes
import sys
import threading

from PySide6.QtCore import QCoreApplication, QTimer

__all__ = ["BROKEN_VERSIONS", "LOW_WATER", "TOP_UP", "install", "top_up"]

LOW_WATER = 200_000  # top up when a singleton's count falls below this
TOP_UP = 1_000_000  # references added each time
CHECK_MS = 250  # a signal costs ~1 reference: no thread emits 200,000 in 250 ms
NEEDED = sys.version_info < (3, 12)  # on 3.12+ the singletons are immortal: the bug cannot bite
BROKEN_VERSIONS = frozenset({"6.12.0"})  # measured (6.11.3 is fine); the guard runs on any version, harmlessly

_lock = threading.Lock()
_timer: QTimer | None = None


def top_up() -> None:
    """Add references to None/True/False whose count is low."""
    if not NEEDED:
        return
    with _lock:
        for singleton in (None, True, False):
            if sys.getrefcount(singleton) < LOW_WATER:
                count = ctypes.c_ssize_t.from_address(id(singleton))  # ob_refcnt, PyObject's first field
                count.value += TOP_UP


def install() -> None:
    """Start the guard (idempotent; needs a QCoreApplication)."""
    global _timer
    top_up()
    app = QCoreApplication.instance()
    if not NEEDED or _timer is not None or app is None:
        return
    _timer = QTimer(app)
    _timer.setInterval(CHECK_MS)
    _timer.timeout.connect(top_up)
    _timer.start()
