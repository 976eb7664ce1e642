"""The device panel's pieces: the slot table as a Qt model, and the flash layout drawn as a bar."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QCoreApplication, QModelIndex, QPersistentModelIndex, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from protocol.update.messages import DeviceInfo, SlotInfo, SlotState

__all__ = ["FlashLayoutBar", "SlotTableModel", "human_bytes", "layout_regions", "state_label"]

ModelIndex = QModelIndex | QPersistentModelIndex

_STATE_TEXT = {
    SlotState.EMPTY: "empty",
    SlotState.INACTIVE: "inactive",
    SlotState.PENDING_TEST: "pending test",
    SlotState.PENDING_PERMANENT: "pending permanent",
    SlotState.ACTIVE: "active (test)",
    SlotState.CONFIRMED: "confirmed",
}


def state_label(state: SlotState) -> str:
    labels = {
        SlotState.EMPTY: QCoreApplication.translate("SlotState", "empty"),
        SlotState.INACTIVE: QCoreApplication.translate("SlotState", "inactive"),
        SlotState.PENDING_TEST: QCoreApplication.translate("SlotState", "pending test"),
        SlotState.PENDING_PERMANENT: QCoreApplication.translate("SlotState", "pending permanent"),
        SlotState.ACTIVE: QCoreApplication.translate("SlotState", "active (test)"),
        SlotState.CONFIRMED: QCoreApplication.translate("SlotState", "confirmed"),
    }
    return labels.get(state, _STATE_TEXT.get(state, str(state)))


def human_bytes(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.2f} MiB"


class SlotTableModel(QAbstractTableModel):
    COLUMNS = ("Slot", "State", "Version", "Size", "Security counter", "Digest")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._slots: tuple[SlotInfo, ...] = ()

    def set_info(self, info: DeviceInfo | None) -> None:
        self.beginResetModel()
        self._slots = info.slots if info is not None else ()
        self.endResetModel()

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's own signature
        return 0 if parent.isValid() else len(self._slots)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's own signature
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            names = (
                QCoreApplication.translate("SlotTable", "Slot"),
                QCoreApplication.translate("SlotTable", "State"),
                QCoreApplication.translate("SlotTable", "Version"),
                QCoreApplication.translate("SlotTable", "Size"),
                QCoreApplication.translate("SlotTable", "Security counter"),
                QCoreApplication.translate("SlotTable", "Digest"),
            )
            return names[section]
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        slot = self._slots[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            empty = slot.state is SlotState.EMPTY
            values = (
                QCoreApplication.translate("SlotTable", "primary")
                if slot.index == 0
                else QCoreApplication.translate("SlotTable", "secondary"),
                state_label(slot.state),
                "" if empty else slot.version_text,
                "" if empty else human_bytes(slot.image_size),
                "" if empty else str(slot.security_counter),
                "" if empty else slot.digest.hex()[:16] + "…",
            )
            return values[column]
        if role == Qt.ItemDataRole.ToolTipRole and column == 5:
            return slot.digest.hex()
        if role == Qt.ItemDataRole.ForegroundRole and column == 1 and slot.state is SlotState.ACTIVE:
            return QColor("#b26a00")
        return None


# Regions the bar draws, with their colours.
_COLOURS = {
    "bootloader": QColor("#607d8b"),
    "primary": QColor("#2e7d32"),
    "secondary": QColor("#1565c0"),
    "free": QColor("#e0e0e0"),
}


def layout_regions(info: DeviceInfo) -> list[tuple[str, int, int]]:
    """``(kind, start, size)`` from flash base to end: bootloader (and state sectors) before the first slot,
    the slots, and what is left (scratch or free)."""
    flash = info.flash
    regions: list[tuple[str, int, int]] = []
    cursor = flash.base
    for slot in sorted(flash.slots, key=lambda s: s.address):
        if slot.address > cursor:
            regions.append(("bootloader" if not regions else "free", cursor, slot.address - cursor))
        regions.append(("primary" if slot.index == 0 else "secondary", slot.address, slot.size))
        cursor = slot.address + slot.size
    end = flash.base + flash.size
    if end > cursor:
        regions.append(("free", cursor, end - cursor))
    return regions


class FlashLayoutBar(QWidget):
    """The chip's flash from base to end, each region in proportion, labelled where it has room."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._regions: list[tuple[str, int, int]] = []
        self._base = 0
        self._size = 0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(34)

    def sizeHint(self) -> QSize:
        return QSize(400, 34)

    def set_info(self, info: DeviceInfo | None) -> None:
        self._regions = layout_regions(info) if info is not None and info.flash.size else []
        self._base = info.flash.base if info is not None else 0
        self._size = info.flash.size if info is not None else 0
        tips = [f"{kind}: 0x{start:08X} {human_bytes(size)}" for kind, start, size in self._regions]
        self.setToolTip("\n".join(tips))
        self.update()

    def region_names(self) -> list[str]:
        return [kind for kind, _start, _size in self._regions]

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        if not self._regions or not self._size:
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.tr("no device"))
            return
        names = {
            "bootloader": QCoreApplication.translate("FlashLayoutBar", "bootloader"),
            "primary": QCoreApplication.translate("FlashLayoutBar", "primary slot"),
            "secondary": QCoreApplication.translate("FlashLayoutBar", "secondary slot"),
            "free": QCoreApplication.translate("FlashLayoutBar", "scratch / free"),
        }
        short = {  # where the name does not fit (a 64 KiB bootloader on a 1 MiB chip)
            "bootloader": QCoreApplication.translate("FlashLayoutBar", "boot"),
            "primary": QCoreApplication.translate("FlashLayoutBar", "primary"),
            "secondary": QCoreApplication.translate("FlashLayoutBar", "secondary"),
            "free": QCoreApplication.translate("FlashLayoutBar", "free"),
        }
        metrics = painter.fontMetrics()
        for kind, start, size in self._regions:
            x = rect.left() + rect.width() * (start - self._base) / self._size
            w = rect.width() * size / self._size
            box = QRectF(x, rect.top(), w, rect.height())
            painter.fillRect(box, _COLOURS[kind])
            painter.setPen(QColor("#ffffff"))
            painter.drawRect(box)
            label = next(
                (
                    text
                    for text in (f"{names[kind]} {human_bytes(size)}", names[kind], short[kind])
                    if metrics.horizontalAdvance(text) + 6 <= w
                ),
                metrics.elidedText(short[kind], Qt.TextElideMode.ElideRight, max(int(w) - 6, 0)),
            )
            if label:
                painter.setPen(QColor("#000000") if kind == "free" else QColor("#ffffff"))
                painter.drawText(box, Qt.AlignmentFlag.AlignCenter, label)
        painter.end()
