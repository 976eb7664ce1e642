"""The PySide6 desktop updater.  Not built yet: see the desktop app issue."""
