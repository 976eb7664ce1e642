"""The device log console: a list model (never a text widget that grows), a filter proxy, a view.

Device log frames and host events arrive in batches (:mod:`updater_gui.workers` coalesces them); each batch is
one ``beginInsertRows``, and the view has uniform item sizes, so 100,000 lines scroll like 100.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .operations import HOST, LogRecord

__all__ = ["LEVELS", "LogConsole", "LogFilter", "LogModel", "format_record"]

LEVELS = ("error", "warning", "info", "debug")  # most severe first
_RANK = {name: i for i, name in enumerate(LEVELS)}
MAX_LINES = 500_000  # the oldest lines go beyond this
FOLLOW_MS = 150  # auto-scroll at most this often
RecordRole = Qt.ItemDataRole.UserRole + 1
_COLOURS = {"error": QColor("#c62828"), "warning": QColor("#b26a00"), "info": None, "debug": QColor("#757575")}
ModelIndex = QModelIndex | QPersistentModelIndex


def format_record(record: LogRecord) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(record.time)) + f".{int(record.time * 1000) % 1000:03d}"
    source = "host  " if record.source == HOST else "device"
    return f"{stamp}  {record.level.upper():<7} {source}  {record.text}"


class LogModel(QAbstractListModel):
    def __init__(self, parent: QWidget | None = None, max_lines: int = MAX_LINES) -> None:
        super().__init__(parent)
        self._records: list[LogRecord] = []
        self._max = max_lines

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's own signature
        return 0 if parent.isValid() else len(self._records)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        record = self._records[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return format_record(record)
        if role == Qt.ItemDataRole.ForegroundRole:
            return _COLOURS.get(record.level)
        if role == RecordRole:
            return record
        return None

    def append(self, records: Iterable[LogRecord]) -> None:
        batch = list(records)
        if not batch:
            return
        overflow = len(self._records) + len(batch) - self._max
        if overflow > 0:
            drop = min(overflow, len(self._records))
            self.beginRemoveRows(QModelIndex(), 0, drop - 1)
            del self._records[:drop]
            self.endRemoveRows()
            batch = batch[-self._max :]
        first = len(self._records)
        self.beginInsertRows(QModelIndex(), first, first + len(batch) - 1)
        self._records.extend(batch)
        self.endInsertRows()

    def clear(self) -> None:
        self.beginResetModel()
        self._records.clear()
        self.endResetModel()

    def records(self) -> list[LogRecord]:
        return list(self._records)


class LogFilter(QSortFilterProxyModel):
    """Rows at or above a level whose text contains a string (case-insensitive)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rank = _RANK["debug"]
        self._text = ""

    def set_level(self, level: str) -> None:
        self._refilter(lambda: setattr(self, "_rank", _RANK[level]))

    def set_text(self, text: str) -> None:
        self._refilter(lambda: setattr(self, "_text", text.casefold()))

    def _refilter(self, change: Callable[[], None]) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt 6.10+: invalidateFilter() is deprecated
            self.beginFilterChange()
            change()
            self.endFilterChange()
        else:
            change()
            self.invalidateFilter()

    @property
    def active(self) -> bool:
        """Whether the filter hides anything (when not, the view shows the source model directly)."""
        return self._rank != _RANK["debug"] or bool(self._text)

    def filterAcceptsRow(self, source_row: int, source_parent: ModelIndex) -> bool:
        model = self.sourceModel()
        record = model.data(model.index(source_row, 0, source_parent), RecordRole)
        if not isinstance(record, LogRecord) or _RANK.get(record.level, 3) > self._rank:
            return False
        return not self._text or self._text in record.text.casefold()

    def visible_lines(self) -> list[str]:
        return [str(self.data(self.index(row, 0))) for row in range(self.rowCount())]


class LogConsole(QWidget):
    saved = Signal(str)  # the path written

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = LogModel(self)
        self.proxy = LogFilter(self)  # attached to the model only while a filter is set: see _route
        self.view = QListView(self)
        self.view.setModel(self.model)  # the proxy only while a filter is set: see _route
        self.view.setUniformItemSizes(True)
        self.view.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.view.setFont(font)

        self.level = QComboBox(self)
        self.level_label = QLabel(self)
        self.filter = QLineEdit(self)
        self.filter.setClearButtonEnabled(True)
        self.pause = QCheckBox(self)
        self.clear_button = QPushButton(self)
        self.save_button = QPushButton(self)
        self.count = QLabel(self)

        bar = QHBoxLayout()
        bar.addWidget(self.level_label)
        bar.addWidget(self.level)
        bar.addWidget(self.filter, 1)
        bar.addWidget(self.pause)
        bar.addWidget(self.clear_button)
        bar.addWidget(self.save_button)
        bar.addWidget(self.count)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)

        self.level.currentIndexChanged.connect(lambda i: self._filter(lambda: self.proxy.set_level(LEVELS[i])))
        self.filter.textChanged.connect(lambda text: self._filter(lambda: self.proxy.set_text(text)))
        self.clear_button.clicked.connect(self.model.clear)
        self.save_button.clicked.connect(self._ask_save)
        self._scroll = QTimer(self)
        self._scroll.setSingleShot(True)
        self._scroll.setInterval(FOLLOW_MS)
        self._scroll.timeout.connect(self._scroll_to_end)
        self.proxy.rowsInserted.connect(self._follow)
        self.model.rowsInserted.connect(self._follow)
        self.model.rowsInserted.connect(self._update_count)
        self.model.modelReset.connect(self._update_count)
        self.retranslate()

    def retranslate(self) -> None:
        index = max(self.level.currentIndex(), 0) if self.level.count() else len(LEVELS) - 1
        self.level.blockSignals(True)
        self.level.clear()
        self.level.addItems([self.tr("Errors"), self.tr("Warnings"), self.tr("Info"), self.tr("Debug")])
        self.level.setCurrentIndex(index)
        self.level.blockSignals(False)
        self.level_label.setText(self.tr("Level:"))
        self.filter.setPlaceholderText(self.tr("Filter log text…"))
        self.pause.setText(self.tr("Pause scrolling"))
        self.clear_button.setText(self.tr("Clear"))
        self.save_button.setText(self.tr("Save…"))
        self._update_count()

    def add(self, records: Iterable[LogRecord]) -> None:
        self.model.append(records)

    def set_level(self, level: str) -> None:
        self.level.setCurrentIndex(LEVELS.index(level))

    def _filter(self, change: Callable[[], None]) -> None:
        change()
        self._route()

    def _route(self) -> None:
        """The view shows the proxy only while a filter hides something.  Unfiltered, every inserted line
        would cost a ``filterAcceptsRow`` call into Python (a thousand a second from a chatty device, each
        waiting for the GIL while a worker flashes), for nothing."""
        if self.proxy.active:
            if self.proxy.sourceModel() is not self.model:
                self.proxy.setSourceModel(self.model)
            if self.view.model() is not self.proxy:
                self.view.setModel(self.proxy)
        else:
            if self.view.model() is not self.model:
                self.view.setModel(self.model)
            if self.proxy.sourceModel() is not None:
                self.proxy.setSourceModel(None)  # type: ignore[arg-type]  # Qt takes a null model
        if not self.pause.isChecked():
            self.view.scrollToBottom()

    def shown(self) -> QAbstractItemModel:
        """The model the view shows (the log, or the filter over it)."""
        return self.view.model()

    def visible_lines(self) -> list[str]:
        """The lines the view shows, as saved."""
        if self.proxy.active:
            return self.proxy.visible_lines()
        return [format_record(record) for record in self.model.records()]

    def _follow(self) -> None:
        """New lines: scroll to them, at most every FOLLOW_MS (scrolling lays the view out and calls the model
        back from C++; once per batch of a chatty device was the GUI thread's largest cost while flashing)."""
        if self.sender() is not self.view.model() or self.pause.isChecked():
            return
        if not self._scroll.isActive():
            self._scroll.start()

    def _scroll_to_end(self) -> None:
        if not self.pause.isChecked():
            self.view.scrollToBottom()

    def _update_count(self) -> None:
        self.count.setText(self.tr("{n} lines").format(n=self.model.rowCount()))

    def _ask_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, self.tr("Save log"), "stm32ota.log", self.tr("Log files (*.log *.txt)")
        )
        if path:
            self.save(Path(path))

    def save(self, path: Path) -> int:
        """Write the lines the filter shows; returns how many."""
        lines = self.visible_lines()
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        self.saved.emit(str(path))
        return len(lines)
