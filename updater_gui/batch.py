"""The production view: one image to several ports at once, a row each, a loop that waits for the next board,
a summary and a CSV report."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QCoreApplication,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QPainter, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from protocol.drivers import CancelToken
from protocol.errors import Stm32OtaError
from protocol.flow import FlashOptions

from . import operations as ops
from .emulated import EmulatorPool, EmulatorSpec
from .inspection import FileSummary, judge
from .messages import error_text, phase_label, reason_text
from .operations import EventAdapter, Snapshot, Target
from .ports import EMULATED
from .workers import ErrorInfo, Worker, start_worker

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["BatchModel", "BatchRow", "BatchView", "ProgressDelegate", "flash_board"]

ModelIndex = QModelIndex | QPersistentModelIndex
NEXT_BOARD_POLL_S = 1.0


@dataclass
class BatchRow:
    port: str
    device_id: str = ""
    phase: str = "waiting"
    fraction: float = 0.0
    result: str = ""
    ok: bool | None = None
    seconds: float = 0.0
    version: str = ""
    board: BoardResult | None = None  # the last board's result, or
    failure: ErrorInfo | None = None  # why the row's worker stopped

    def shown(self) -> str:
        """The result column in the window's language (rendered at display time: a switch re-renders it)."""
        if self.failure is not None:
            return self.failure.text()
        board = self.board
        if board is None:
            return self.result
        if board.ok:
            return QCoreApplication.translate("BatchView", "ok, {version} in {seconds:.1f} s").format(
                version=board.version, seconds=board.seconds
            )
        return board.shown()


@dataclass(frozen=True)
class BoardResult:
    port: str
    device_id: str
    ok: bool
    result: str
    seconds: float
    version: str
    error: BaseException | None = None  # a failure's typed error, or
    slug: str | None = None  # a refusal's pre-flight reason slug (``result`` holds the core's English)

    def shown(self) -> str:
        """The result in the window's language (the CSV keeps the core's English)."""
        if self.error is not None:
            return error_text(self.error)
        if self.slug is not None:
            return reason_text(self.slug, self.result)
        return self.result


def flash_board(
    target: Target, summary: FileSummary, cancel: CancelToken, adapter: EventAdapter, *, skip: set[str]
) -> BoardResult | None:
    """Read the board on ``target`` (None when it is one of ``skip``, the boards done already), check the file
    against it, flash it.  Errors are results: one bad board must not stop the tray."""
    start = time.monotonic()
    device_id = ""
    try:
        device = ops.read_device(target, cancel=cancel, adapter=adapter)
        device_id = device.info.uid.hex() if device.info is not None else target.url
        if device_id in skip:
            return None
        adapter.on_snapshot(Snapshot(phase="check", message=device_id))
        verdict = judge(summary, device)
        if not verdict.ok:
            return BoardResult(
                target.url, device_id, False, verdict.reason, time.monotonic() - start, "", slug=verdict.slug or ""
            )
        options = FlashOptions(protocol="ymodem" if device.kind == "iap" else "ota", baud=target.baud)
        _result, after = ops.flash(target, summary.data, summary.name, options, cancel=cancel, adapter=adapter)
        version = ""
        if after.info is not None:
            version = after.info.slot(0).version_text
        return BoardResult(target.url, device_id, True, "ok", time.monotonic() - start, version)
    except Stm32OtaError as err:
        if cancel.cancelled:
            raise
        return BoardResult(target.url, device_id, False, str(err), time.monotonic() - start, "", error=err)


class BatchModel(QStandardItemModel):
    r"""The batch rows, kept as :class:`BatchRow`\ s and mirrored into Qt's own item model.

    A C++ model on purpose: painting a Python model calls ``data()`` in Python for every cell and role, and each
    call waits for the GIL while eight workers flash (benchmarks/gui.py); here a row's texts are pushed once
    when it changes (:meth:`row_changed`) and painting never enters Python."""

    COLUMNS = 5

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(0, self.COLUMNS, parent)
        self.rows: list[BatchRow] = []
        self.retranslate()

    def retranslate(self) -> None:
        self.setHorizontalHeaderLabels(
            [
                QCoreApplication.translate("Batch", "Port"),
                QCoreApplication.translate("Batch", "Device id"),
                QCoreApplication.translate("Batch", "Phase"),
                QCoreApplication.translate("Batch", "Progress"),
                QCoreApplication.translate("Batch", "Result"),
            ]
        )
        for row in range(len(self.rows)):
            self.row_changed(row)

    def set_rows(self, rows: list[BatchRow]) -> None:
        self.rows = rows
        self.setRowCount(len(rows))
        for row in range(len(rows)):
            for column in range(self.COLUMNS):
                if self.item(row, column) is None:
                    item = QStandardItem()
                    item.setEditable(False)
                    self.setItem(row, column, item)
            self.row_changed(row)

    def row_changed(self, row: int) -> None:
        entry = self.rows[row]
        shown = entry.shown()
        texts = (entry.port, entry.device_id, phase_label(entry.phase), f"{entry.fraction * 100:.0f} %", shown)
        items: list[QStandardItem | None] = [self.item(row, column) for column in range(self.COLUMNS)]
        for item, text in zip(items, texts, strict=True):
            if item is not None and item.text() != text:
                item.setText(text)
        progress, result = items[3], items[4]
        if progress is not None and progress.data(Qt.ItemDataRole.UserRole) != entry.fraction:
            progress.setData(entry.fraction, Qt.ItemDataRole.UserRole)
        if result is not None:
            result.setToolTip(shown)
            if entry.ok is not None:
                result.setForeground(QColor("#2e7d32") if entry.ok else QColor("#c62828"))


class ProgressDelegate(QStyledItemDelegate):
    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        if index.data(Qt.ItemDataRole.UserRole) is None:  # no progress to show in this row
            super().paint(painter, option, index)
            return
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 2, -2, -2)
        bar.minimum = 0
        bar.maximum = 100
        bar.progress = int(float(index.data(Qt.ItemDataRole.UserRole) or 0) * 100)
        bar.text = f"{bar.progress} %"
        bar.textVisible = True
        QApplication.style().drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)


class _RowSignals(QObject):
    board_done = Signal(int, object)  # row, BoardResult
    port_known = Signal(int, str)  # row, the port an emulated board got


class BatchView(QWidget):
    batch_finished = Signal()

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window_ = window
        self.model = BatchModel(self)
        self.results: list[BoardResult] = []
        self._workers: dict[int, Worker] = {}
        self._signals = _RowSignals()
        self._signals.board_done.connect(self._board_done)
        self._signals.port_known.connect(self._port_known)
        self.ports_label = QLabel(self)
        self.ports = QListWidget(self)
        self.ports.setMaximumWidth(320)
        self.emulated = QSpinBox(self)
        self.emulated.setRange(0, 32)
        self.emulated_label = QLabel(self)
        self.loop = QCheckBox(self)
        self.every_new = QCheckBox(self)
        self._known_ports: set[str] = set()
        self._scanned = False
        self._active = False
        self.start_button = QPushButton(self)
        self.stop_button = QPushButton(self)
        self.csv_button = QPushButton(self)
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.verticalHeader().setVisible(False)
        self.table.setItemDelegateForColumn(3, ProgressDelegate(self.table))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(3, 140)
        header.setStretchLastSection(True)
        left = QVBoxLayout()
        left.addWidget(self.ports_label)
        left.addWidget(self.ports, 1)
        spin = QHBoxLayout()
        spin.addWidget(self.emulated_label)
        spin.addWidget(self.emulated)
        left.addLayout(spin)
        left.addWidget(self.loop)
        left.addWidget(self.every_new)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.csv_button)
        left.addLayout(buttons)
        right = QVBoxLayout()
        right.addWidget(self.table, 1)
        right.addWidget(self.summary)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(left)
        layout.addLayout(right, 1)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.csv_button.clicked.connect(self._ask_csv)
        self.retranslate()
        self._enable()

    def retranslate(self) -> None:
        self.ports_label.setText(self.tr("Serial ports (tick to include):"))
        self.emulated_label.setText(self.tr("Emulated boards:"))
        self.loop.setText(self.tr("Loop: wait for the next board on each port"))
        self.every_new.setText(self.tr("Flash every board that appears"))
        self.start_button.setText(self.tr("Flash all"))
        self.stop_button.setText(self.tr("Stop"))
        self.csv_button.setText(self.tr("Save CSV…"))
        self.ports.setToolTip(self.tr("Tick the ports to flash"))
        self.model.retranslate()
        self._update_summary()

    @property
    def running(self) -> bool:
        return bool(self._workers) or self._waiting

    @property
    def _waiting(self) -> bool:
        """A run with "every board that appears" stays open for new ports until Stop."""
        return self._active and self.every_new.isChecked()

    def _enable(self) -> None:
        self.start_button.setEnabled(not self.running)
        self.stop_button.setEnabled(self.running)
        self.csv_button.setEnabled(bool(self.results))

    def refresh_ports(self, urls: list[str]) -> None:
        """The machine's ports changed (plug/unplug).  With "every board that appears" ticked, a new port is
        ticked, and during a run it gets a row of its own at once."""
        checked = set(self.selected_ports())
        known, first = self._known_ports, not self._scanned
        self._known_ports = {u for u in urls if u != EMULATED}
        self._scanned = True
        appeared = [u for u in urls if u != EMULATED and u not in known]
        self.ports.clear()
        for url in urls:
            if url == EMULATED:
                continue
            item = QListWidgetItem(url, self.ports)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            tick = url in checked or (self.every_new.isChecked() and url in appeared and not first)
            item.setCheckState(Qt.CheckState.Checked if tick else Qt.CheckState.Unchecked)
        if self.running and self.every_new.isChecked() and not first:
            for url in appeared:
                self.add_port(url)

    def add_port(self, url: str) -> None:
        """A new row for ``url`` in the running batch."""
        summary = self.window_.summary
        if summary is None or any(r.port == url for r in self.model.rows):
            return
        row = len(self.model.rows)
        self.model.set_rows([*self.model.rows, BatchRow(port=url)])
        self._start_row(row, url, self.window_.baud(), summary)
        self._enable()

    def selected_ports(self) -> list[str]:
        return [
            self.ports.item(i).text()
            for i in range(self.ports.count())
            if self.ports.item(i).checkState() == Qt.CheckState.Checked
        ]

    def start(self, ports: list[str] | None = None, emulated: int | None = None) -> bool:
        """Flash the main window's file to every ticked port (and ``emulated`` new emulated boards)."""
        summary = self.window_.summary
        if summary is None or summary.problem:
            self.summary.setText(self.tr("Open a firmware file first (in the Firmware panel)."))
            return False
        if self.running:
            return False
        urls = list(ports) if ports is not None else self.selected_ports()
        count = self.emulated.value() if emulated is None else emulated
        urls += [EMULATED] * count
        if not urls and not self.every_new.isChecked():
            self.summary.setText(self.tr("Tick at least one port, or add emulated boards."))
            return False
        self._active = True
        self.results = []
        self.model.set_rows([BatchRow(port=self.tr("emulated") if u == EMULATED else u) for u in urls])
        baud = self.window_.baud()
        for row, url in enumerate(urls):
            self._start_row(row, url, baud, summary)
        self._enable()
        self._update_summary()
        return True

    def _start_row(self, row: int, url: str, baud: int, summary: FileSummary) -> None:
        loop = self.loop.isChecked()
        pool: EmulatorPool = self.window_.emulators
        spec: EmulatorSpec = self.window_.emulator_spec
        signals = self._signals

        def work(cancel: CancelToken, adapter: EventAdapter) -> None:
            real = url
            if url == EMULATED:
                real = pool.start(spec)
                signals.port_known.emit(row, real)
            target = Target(real, baud)
            done: set[str] = set()
            while not cancel.cancelled:
                result = flash_board(target, summary, cancel, adapter, skip=done)
                if result is not None:
                    done.add(result.device_id)
                    signals.board_done.emit(row, result)
                    if not loop:
                        return
                    adapter.on_snapshot(Snapshot(phase="connect", message="waiting for the next board"))
                end = time.monotonic() + NEXT_BOARD_POLL_S
                while time.monotonic() < end and not cancel.cancelled:
                    time.sleep(0.05)

        worker = Worker(work, name=f"batch {row}")
        worker.signals.progress.connect(lambda s, r=row: self._progress(r, s))
        worker.signals.errored.connect(lambda e, r=row: self._row_error(r, e))
        worker.signals.finished.connect(lambda r=row: self._row_finished(r))
        self._workers[row] = worker
        start_worker(worker)

    def _port_known(self, row: int, port: str) -> None:
        self.model.rows[row].port = self.tr("{port} (emulated)").format(port=port)
        self.model.row_changed(row)

    def _progress(self, row: int, snapshot: Snapshot) -> None:
        entry = self.model.rows[row]
        entry.phase = snapshot.phase
        if snapshot.total:
            entry.fraction = snapshot.fraction if snapshot.phase == "transfer" else entry.fraction
        if snapshot.phase == "check" and snapshot.message and not entry.device_id:
            entry.device_id = snapshot.message
        self.model.row_changed(row)

    def _board_done(self, row: int, result: BoardResult) -> None:
        self.results.append(result)
        entry = self.model.rows[row]
        entry.device_id = result.device_id
        entry.ok = result.ok
        entry.board = result
        entry.failure = None
        entry.result = result.result
        entry.phase = "done" if result.ok else "error"
        entry.fraction = 1.0 if result.ok else entry.fraction
        self.model.row_changed(row)
        self._update_summary()

    def _row_error(self, row: int, error: ErrorInfo) -> None:
        entry = self.model.rows[row]
        if error.cancelled:
            entry.phase = "cancelled"
        else:
            entry.ok = False
            entry.phase = "error"
            entry.failure = error
            entry.result = error.english()
        self.model.row_changed(row)

    def _row_finished(self, row: int) -> None:
        self._workers.pop(row, None)
        if not self._workers and not self._waiting:
            self._active = False
            self.batch_finished.emit()
        self._enable()
        self._update_summary()

    def _update_summary(self) -> None:
        ok = sum(1 for r in self.results if r.ok)
        failed = len(self.results) - ok
        state = self.tr("running") if self.running else self.tr("idle")
        self.summary.setText(
            self.tr("{ok} flashed, {failed} failed, {boards} boards on {ports} ports ({state})").format(
                ok=ok, failed=failed, boards=len(self.results), ports=self.model.rowCount(), state=state
            )
        )

    def stop(self) -> None:
        waiting = self._waiting
        self._active = False
        for worker in list(self._workers.values()):
            worker.cancel()
        if waiting and not self._workers:
            self.batch_finished.emit()
        self._enable()
        self._update_summary()

    def _ask_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, self.tr("Save report"), "batch-report.csv", "CSV (*.csv)")
        if path:
            self.save_csv(Path(path))

    def save_csv(self, path: Path) -> None:
        summary = self.window_.summary
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["port", "device_id", "image", "sha256", "result", "ok", "version", "seconds"])
            for r in self.results:
                writer.writerow(
                    [
                        r.port,
                        r.device_id,
                        summary.name if summary else "",
                        summary.sha256 if summary else "",
                        r.result,
                        "yes" if r.ok else "no",
                        r.version,
                        f"{r.seconds:.2f}",
                    ]
                )
