"""A terminal on a classic AN4657 IAP device: its menu as it prints it, keys typed into it, and
"Send file (YMODEM)" (the flow picks the menu's download option itself)."""

from __future__ import annotations

import queue
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QFont, QFontDatabase, QTextCursor
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from protocol.drivers import CancelToken, SerialLink
from protocol.flow import FlashOptions, FlashResult

from . import operations as ops
from .operations import EventAdapter, Target
from .workers import ErrorInfo, Worker, start_worker

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["IapTerminal"]

MAX_BLOCKS = 5000  # lines kept in the terminal view
READ_WAIT_S = 0.05


class _TerminalSignals(QObject):
    received = Signal(bytes)


class IapTerminal(QWidget):
    send_finished = Signal(bool)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window_ = window
        self.target: Target | None = None
        self._reader: Worker | None = None
        self._sender: Worker | None = None
        self._keys: queue.Queue[bytes] = queue.Queue()
        self._signals = _TerminalSignals()
        self._signals.received.connect(self._show)
        self.output = QPlainTextEdit(self)
        self.output.setReadOnly(True)
        self.output.setMaximumBlockCount(MAX_BLOCKS)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.output.setFont(font)
        self.input = QLineEdit(self)
        self.send_button = QPushButton(self)
        self.file_button = QPushButton(self)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.input, 1)
        row.addWidget(self.send_button)
        row.addWidget(self.file_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.output, 1)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self.input.returnPressed.connect(self.send_keys)
        self.send_button.clicked.connect(self.send_keys)
        self.file_button.clicked.connect(self._ask_file)
        self.retranslate()
        self._enable()

    def retranslate(self) -> None:
        self.input.setPlaceholderText(self.tr("Keys to send (e.g. 1 for Download, 3 to run the application)"))
        self.send_button.setText(self.tr("Send keys"))
        self.file_button.setText(self.tr("Send file (YMODEM)…"))
        if self.target is None:
            self.status.setText(self.tr("Connect a classic IAP device to use its menu here."))

    def _enable(self) -> None:
        live = self.target is not None and self._sender is None
        self.input.setEnabled(live)
        self.send_button.setEnabled(live)
        self.file_button.setEnabled(live)

    def set_target(self, target: Target | None) -> None:
        self.stop()
        self.target = target
        if target is not None:
            self.status.setText(self.tr("Connected to {url}").format(url=target.url))
            self._start_reader()
        else:
            self.retranslate()
        self._enable()

    def _start_reader(self) -> None:
        assert self.target is not None
        target, keys, signals = self.target, self._keys, self._signals

        def work(cancel: CancelToken, _adapter: EventAdapter) -> None:
            with SerialLink(target.url, target.baud) as link:
                while not cancel.cancelled:
                    while not keys.empty():
                        link.write(keys.get_nowait())
                    data = link.read(READ_WAIT_S)
                    if data:
                        signals.received.emit(data)

        self._reader = Worker(work, name="terminal")
        self._reader.signals.errored.connect(self._reader_error)
        start_worker(self._reader)

    def _reader_error(self, error: ErrorInfo) -> None:
        if not error.cancelled:
            self.status.setText(self.tr("Terminal stopped: {text}").format(text=error.text()))

    def stop(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            thread = reader.thread()
            if thread is not None:
                thread.quit()
                thread.wait(2000)

    def send_keys(self, text: str | None = None) -> None:
        keys = self.input.text() if text is None else text
        self.input.clear()
        if keys:
            self._keys.put(keys.encode("latin-1", "replace"))

    def text(self) -> str:
        return str(self.output.toPlainText())

    def _show(self, data: bytes) -> None:
        text = data.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n")
        cursor = self.output.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)
        self.output.setTextCursor(cursor)
        self.output.ensureCursorVisible()

    def _ask_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("Send file (YMODEM)"), "", "*")
        if path:
            self.send_file(Path(path))

    def send_file(self, path: Path) -> Worker | None:
        """Stop the terminal, send ``path`` with YMODEM through the menu's download option, start it again."""
        if self.target is None or self._sender is not None:
            return None
        try:
            data = path.read_bytes()
        except OSError as err:
            self.status.setText(self.tr("Cannot read {name}: {why}").format(name=path.name, why=err.strerror))
            return None
        self.stop()
        target = self.target
        window = self.window_

        def work(cancel: CancelToken, adapter: EventAdapter) -> FlashResult:
            result, _snapshot = ops.flash(
                target,
                data,
                path.name,
                FlashOptions(protocol="ymodem", baud=target.baud),
                cancel=cancel,
                adapter=adapter,
            )
            return result

        worker = Worker(work, name="ymodem")
        worker.signals.progress.connect(window._show_progress)
        worker.signals.logs.connect(window.log_console.add)
        worker.signals.returned.connect(self._sent)
        worker.signals.errored.connect(self._send_failed)
        worker.signals.finished.connect(self._send_done)
        self._sender = worker
        self._enable()
        self.status.setText(self.tr("Sending {name} with YMODEM…").format(name=path.name))
        start_worker(worker)
        return worker

    def _sent(self, result: FlashResult) -> None:
        self.status.setText(
            self.tr("Sent {size} bytes with YMODEM at {time}.").format(
                size=result.image_size, time=time.strftime("%H:%M:%S")
            )
        )
        self.send_finished.emit(True)

    def _send_failed(self, error: ErrorInfo) -> None:
        self.status.setText(self.tr("YMODEM send failed: {text}").format(text=error.text()))
        self.send_finished.emit(False)

    def _send_done(self) -> None:
        self._sender = None
        if self.target is not None:
            self._start_reader()
        self._enable()
