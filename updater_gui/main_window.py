"""The main window: connection, device panel, firmware panel, actions, progress, and the log/IAP/batch tabs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from protocol.drivers import CancelToken
from protocol.flow import FlashOptions, FlashResult

from . import operations as ops
from .device_view import FlashLayoutBar, SlotTableModel, human_bytes
from .emulated import EmulatorPool, EmulatorSpec
from .inspection import FIRMWARE_SUFFIXES, FileSummary, Verdict, inspect_file, judge
from .log_console import LogConsole
from .messages import flow_message, phase_label, verdict_hint, verdict_text
from .operations import DeviceSnapshot, EventAdapter, LogRecord, Snapshot, Target
from .ports import EMULATED, PortEntry, list_serial_ports
from .workers import ErrorInfo, Worker, keep_gui_responsive, start_worker

__all__ = ["BAUD_RATES", "MainWindow", "phase_label"]  # phase_label: re-exported from .messages

log = logging.getLogger(__name__)

BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
PORT_POLL_MS = 1000  # how often the port list is rescanned (plug/unplug)
MAX_RECENT = 8


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds + 0.5)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _without_slug(reason: str, slug: str | None) -> str:
    return reason[len(slug) + 2 :] if slug and reason.startswith(f"{slug}: ") else reason


class MainWindow(QMainWindow):
    """One device at a time.  Every operation runs in a :class:`~updater_gui.workers.Worker`."""

    busy_changed = Signal(bool)
    device_changed = Signal(object)  # DeviceSnapshot | None
    operation_finished = Signal(str, bool)  # operation name, succeeded
    progress_shown = Signal(object)  # Snapshot: each one the progress bar shows, on the GUI thread
    verdict_changed = Signal(object)  # Verdict

    def __init__(
        self,
        settings: QSettings | None = None,
        *,
        emulators: EmulatorPool | None = None,
        emulator_spec: EmulatorSpec | None = None,
        poll_ports: bool = True,
    ) -> None:
        super().__init__()
        from . import qtfix

        qtfix.install()
        keep_gui_responsive()
        self.settings = settings if settings is not None else QSettings("stm32ota", "updater")
        self.emulators = emulators if emulators is not None else EmulatorPool()
        self._own_emulators = emulators is None
        self.emulator_spec = emulator_spec or EmulatorSpec()
        self.target: Target | None = None
        self.device: DeviceSnapshot | None = None
        self.summary: FileSummary | None = None
        self.verdict: Verdict | None = None
        self.last_result: FlashResult | None = None
        self.last_error: ErrorInfo | None = None
        self.worker: Worker | None = None
        self._ports: list[PortEntry] = []
        self._cancelled_flash = False
        self._last_snapshot: Snapshot | None = None
        self._result_render: Callable[[], str] | None = None
        self._result_colour = ""
        self._current = ""
        self._flash_protocol = "ota"
        self.setAcceptDrops(True)
        self._build()
        self._load_settings()
        self.refresh_ports()
        self._port_timer = QTimer(self)
        self._port_timer.setInterval(PORT_POLL_MS)
        self._port_timer.timeout.connect(self.refresh_ports)
        if poll_ports:
            self._port_timer.start()
        self.retranslate()
        self._update_actions()

    # -- construction ----------------------------------------------------------------------------------------
    def _build(self) -> None:
        central = QWidget(self)
        self.setCentralWidget(central)

        # connection
        self.connection_box = QGroupBox(central)
        self.port_combo = QComboBox(self.connection_box)
        self.port_combo.setMinimumContentsLength(28)
        self.port_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.url_edit = QLineEdit(self.connection_box)
        self.baud_combo = QComboBox(self.connection_box)
        for rate in BAUD_RATES:
            self.baud_combo.addItem(str(rate), rate)
        self.baud_combo.setCurrentText("115200")
        self.connect_button = QPushButton(self.connection_box)
        self.port_label = QLabel(self.connection_box)
        self.url_label = QLabel(self.connection_box)
        self.baud_label = QLabel(self.connection_box)
        row = QHBoxLayout(self.connection_box)
        row.addWidget(self.port_label)
        row.addWidget(self.port_combo, 3)
        row.addWidget(self.url_label)
        row.addWidget(self.url_edit, 2)
        row.addWidget(self.baud_label)
        row.addWidget(self.baud_combo)
        row.addWidget(self.connect_button)
        self.connect_button.clicked.connect(self.toggle_connection)
        self.url_edit.returnPressed.connect(self.connect_device)

        # device panel
        self.device_box = QGroupBox(central)
        self.device_form = QFormLayout()
        self.chip_value = QLabel("–")
        self.uid_value = QLabel("–")
        self.loader_value = QLabel("–")
        self.kind_value = QLabel("–")
        for value in (self.chip_value, self.uid_value, self.loader_value, self.kind_value):
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.chip_label, self.uid_label, self.loader_label, self.kind_label = (QLabel() for _ in range(4))
        self.device_form.addRow(self.kind_label, self.kind_value)
        self.device_form.addRow(self.chip_label, self.chip_value)
        self.device_form.addRow(self.uid_label, self.uid_value)
        self.device_form.addRow(self.loader_label, self.loader_value)
        self.layout_bar = FlashLayoutBar(self.device_box)
        self.slot_model = SlotTableModel(self)
        self.slot_view = QTableView(self.device_box)
        self.slot_view.setModel(self.slot_model)
        self.slot_view.verticalHeader().setVisible(False)
        self.slot_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.slot_view.horizontalHeader().setStretchLastSection(True)
        self.slot_view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        rows = self.slot_view.verticalHeader().defaultSectionSize()
        self.slot_view.setFixedHeight(self.slot_view.horizontalHeader().sizeHint().height() + 2 * rows + 6)
        device_layout = QVBoxLayout(self.device_box)
        device_layout.addLayout(self.device_form)
        device_layout.addWidget(self.layout_bar)
        device_layout.addWidget(self.slot_view)
        device_layout.addStretch(1)

        # firmware panel
        self.firmware_box = QGroupBox(central)
        self.open_button = QPushButton(self.firmware_box)
        self.recent_button = QToolButton(self.firmware_box)
        self.recent_menu = QMenu(self.recent_button)
        self.recent_button.setMenu(self.recent_menu)
        self.recent_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.file_value = QLabel("–")
        self.file_value.setWordWrap(True)
        self.what_value = QLabel("–")
        self.what_value.setWordWrap(True)
        self.digest_value = QLabel("–")
        self.digest_value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verdict_value = QLabel("")
        self.verdict_value.setWordWrap(True)
        self.verdict_value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.downgrade_check = QCheckBox(self.firmware_box)
        self.force_check = QCheckBox(self.firmware_box)
        self.downgrade_check.toggled.connect(self._rejudge)
        self.force_check.toggled.connect(self._rejudge)
        self.file_label, self.what_label, self.digest_label, self.verdict_label = (QLabel() for _ in range(4))
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.recent_button)
        buttons.addStretch(1)
        form = QFormLayout()
        form.addRow(self.file_label, self.file_value)
        form.addRow(self.what_label, self.what_value)
        form.addRow(self.digest_label, self.digest_value)
        form.addRow(self.verdict_label, self.verdict_value)
        options = QHBoxLayout()
        options.addWidget(self.downgrade_check)
        options.addWidget(self.force_check)
        options.addStretch(1)
        firmware_layout = QVBoxLayout(self.firmware_box)
        firmware_layout.addLayout(buttons)
        firmware_layout.addLayout(form)
        firmware_layout.addLayout(options)
        firmware_layout.addStretch(1)
        self.open_button.clicked.connect(self._ask_open)

        # actions
        self.flash_button = QPushButton()
        self.activate_button = QPushButton()
        self.confirm_button = QPushButton()
        self.rollback_button = QPushButton()
        self.reset_button = QPushButton()
        self.cancel_button = QPushButton()
        self.flash_button.clicked.connect(self.flash)
        self.activate_button.clicked.connect(self.activate_and_reboot)
        self.confirm_button.clicked.connect(self.confirm)
        self.rollback_button.clicked.connect(self.rollback)
        self.reset_button.clicked.connect(self.reset)
        self.cancel_button.clicked.connect(self.cancel)
        # window-wide shortcuts (a button's own shortcut is reset by setText on a language switch)
        self.shortcuts: dict[str, QShortcut] = {}
        for keys, slot in (
            ("Ctrl+F", self.flash),
            ("Esc", self.cancel),
            ("Ctrl+R", self.reset),
            ("Ctrl+K", self.confirm),
            ("Ctrl+B", self.rollback),
        ):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.activated.connect(slot)
            self.shortcuts[keys] = shortcut
        action_row = QHBoxLayout()
        for button in (
            self.flash_button,
            self.activate_button,
            self.confirm_button,
            self.rollback_button,
            self.reset_button,
            self.cancel_button,
        ):
            action_row.addWidget(button)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.progress_text = QLabel("")
        self.result_value = QLabel("")
        self.result_value.setWordWrap(True)
        self.result_value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        # tabs
        self.tabs = QTabWidget()
        self.log_console = LogConsole(self.tabs)
        self.tabs.addTab(self.log_console, "")
        from .batch import BatchView
        from .iap_terminal import IapTerminal

        self.terminal = IapTerminal(self)
        self.tabs.addTab(self.terminal, "")
        self.batch = BatchView(self)
        self.tabs.addTab(self.batch, "")
        from .gateway_tab import GatewayTab

        self.gateway = GatewayTab(self)
        self.tabs.addTab(self.gateway, "")

        top = QWidget()
        grid = QGridLayout(top)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.connection_box, 0, 0, 1, 2)
        grid.addWidget(self.device_box, 1, 0)
        grid.addWidget(self.firmware_box, 1, 1)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        grid.addLayout(action_row, 2, 0, 1, 2)
        grid.addWidget(self.progress, 3, 0, 1, 2)
        grid.addWidget(self.progress_text, 4, 0, 1, 2)
        grid.addWidget(self.result_value, 5, 0, 1, 2)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        outer = QVBoxLayout(central)
        outer.addWidget(splitter)

        # menu
        self.file_menu = self.menuBar().addMenu("")
        self.open_action = QAction(self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.triggered.connect(self._ask_open)
        self.quit_action = QAction(self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.close)
        self.file_menu.addAction(self.open_action)
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.quit_action)
        self.language_menu = self.menuBar().addMenu("")
        self.english_action = QAction("English", self)
        self.chinese_action = QAction("简体中文", self)
        self.english_action.triggered.connect(lambda: self.set_language("en"))
        self.chinese_action.triggered.connect(lambda: self.set_language("zh_CN"))
        self.language_menu.addAction(self.english_action)
        self.language_menu.addAction(self.chinese_action)
        self.statusBar()
        self.resize(1180, 900)
        self.splitter.setSizes([500, 400])

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("stm32ota updater"))
        self.connection_box.setTitle(self.tr("Connection"))
        self.port_label.setText(self.tr("Port:"))
        self.url_label.setText(self.tr("or URL:"))
        self.url_edit.setPlaceholderText(self.tr("socket://host:port, rfc2217://…"))
        self.baud_label.setText(self.tr("Baud:"))
        self.device_box.setTitle(self.tr("Device"))
        self.kind_label.setText(self.tr("Type:"))
        self.chip_label.setText(self.tr("Chip:"))
        self.uid_label.setText(self.tr("Unique id:"))
        self.loader_label.setText(self.tr("Bootloader:"))
        self.firmware_box.setTitle(self.tr("Firmware"))
        self.open_button.setText(self.tr("Open…"))
        self.recent_button.setText(self.tr("Recent"))
        self.file_label.setText(self.tr("File:"))
        self.what_label.setText(self.tr("Contents:"))
        self.digest_label.setText(self.tr("SHA-256:"))
        self.verdict_label.setText(self.tr("Check:"))
        self.downgrade_check.setText(self.tr("Allow downgrade"))
        self.force_check.setText(self.tr("Reinstall same version"))
        self.activate_button.setText(self.tr("Activate and reboot"))
        self.confirm_button.setText(self.tr("Confirm"))
        self.rollback_button.setText(self.tr("Roll back"))
        self.reset_button.setText(self.tr("Reset"))
        self.cancel_button.setText(self.tr("Cancel"))
        self.tabs.setTabText(0, self.tr("Device log"))
        self.tabs.setTabText(1, self.tr("IAP terminal"))
        self.tabs.setTabText(2, self.tr("Batch"))
        self.tabs.setTabText(3, self.tr("Gateway"))
        self.file_menu.setTitle(self.tr("&File"))
        self.open_action.setText(self.tr("&Open firmware…"))
        self.quit_action.setText(self.tr("&Quit"))
        self.language_menu.setTitle(self.tr("&Language"))
        self.log_console.retranslate()
        self.terminal.retranslate()
        self.batch.retranslate()
        self.gateway.retranslate()
        self.slot_model.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(SlotTableModel.COLUMNS) - 1)
        self._fill_port_combo()
        self._show_device()
        self._show_summary()
        if self.summary is not None:
            self._rejudge()
        self._update_actions()
        self._rebuild_recent()
        if self._last_snapshot is not None:
            self._show_progress(self._last_snapshot)
        self.set_result(self._result_render, self._result_colour)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def set_language(self, language: str) -> None:
        from .i18n import install_language

        install_language(language)
        self.settings.setValue("language", language)

    # -- settings --------------------------------------------------------------------------------------------
    def _load_settings(self) -> None:
        baud = str(self.settings.value("baud", "115200"))
        if self.baud_combo.findText(baud) >= 0:
            self.baud_combo.setCurrentText(baud)
        self.url_edit.setText(str(self.settings.value("url", "")))
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    def _save_settings(self) -> None:
        self.settings.setValue("baud", self.baud_combo.currentText())
        self.settings.setValue("url", self.url_edit.text())
        self.settings.setValue("port", self.port_combo.currentData() or "")
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.sync()

    def recent_files(self) -> list[str]:
        value = self.settings.value("recent", [])
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value] if isinstance(value, list) else []

    def _remember(self, path: Path) -> None:
        recent = [str(path)] + [p for p in self.recent_files() if p != str(path)]
        self.settings.setValue("recent", recent[:MAX_RECENT])
        self._rebuild_recent()

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_files()
        for path in recent:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _checked=False, p=path: self.open_file(Path(p)))
        self.recent_button.setEnabled(bool(recent))

    # -- ports -----------------------------------------------------------------------------------------------
    def refresh_ports(self) -> None:
        ports = list_serial_ports()
        if ports != self._ports:
            self._ports = ports
            self._fill_port_combo()

    def _fill_port_combo(self) -> None:
        current = self.port_combo.currentData() or str(self.settings.value("port", EMULATED))
        self.port_combo.blockSignals(True)
        self.port_combo.clear()
        self.port_combo.addItem(self.tr("Emulated STM32 (built in)"), EMULATED)
        for entry in self._ports:
            self.port_combo.addItem(entry.label, entry.url)
            if entry.serial_number:
                self.port_combo.setItemData(
                    self.port_combo.count() - 1, f"serial number {entry.serial_number}", Qt.ItemDataRole.ToolTipRole
                )
        index = self.port_combo.findData(current)
        self.port_combo.setCurrentIndex(max(index, 0))
        self.port_combo.blockSignals(False)
        if hasattr(self, "batch"):
            self.batch.refresh_ports(self.port_urls())
        if hasattr(self, "gateway"):
            self.gateway.refresh_ports(self.port_urls())

    def port_urls(self) -> list[str]:
        return [str(self.port_combo.itemData(i)) for i in range(self.port_combo.count())]

    def baud(self) -> int:
        return int(self.baud_combo.currentData())

    # -- running work ----------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.worker is not None

    def _run(
        self,
        name: str,
        work: Callable[[CancelToken, EventAdapter], Any],
        on_result: Callable[[Any], None],
    ) -> Worker | None:
        if self.worker is not None:
            self.show_error(ErrorInfo(self.tr("wait for the current operation to finish, or cancel it")))
            return None
        worker = Worker(work, name=name)
        self.worker = worker
        self._current = name
        self.last_error = None
        self.set_result(None)
        worker.signals.progress.connect(self._show_progress)
        worker.signals.logs.connect(self.log_console.add)
        worker.signals.returned.connect(on_result)
        worker.signals.returned.connect(lambda _r: self.operation_finished.emit(name, True))
        worker.signals.errored.connect(self._on_error)
        worker.signals.errored.connect(lambda _e: self.operation_finished.emit(name, False))
        worker.signals.finished.connect(self._on_finished)
        self.busy_changed.emit(True)
        self._update_actions()
        start_worker(worker)
        return worker

    def _on_finished(self) -> None:
        self.worker = None
        self.busy_changed.emit(False)
        self._update_actions()

    def _on_error(self, error: ErrorInfo) -> None:
        self.last_error = error
        if error.cancelled:
            self._cancelled_flash = self._current == "flash" and self._flash_protocol == "ota"
            done = self.progress.value() / 10
            resumable = self._cancelled_flash
            self.set_result(
                lambda: (
                    self.tr("Cancelled ({done:.0f} %). Press Resume to continue where it stopped.").format(done=done)
                    if resumable
                    else self.tr("Cancelled.")
                ),
                "#b26a00",
            )
            self._last_snapshot = Snapshot(phase="cancelled")
            self.progress_text.setText(phase_label("cancelled"))
        else:
            self.show_error(error)

    def set_result(self, render: Callable[[], str] | None, colour: str = "") -> None:
        """The result line; ``render`` builds the text in the current language (again after a switch)."""
        self._result_render = render
        self._result_colour = colour
        self.result_value.setText(render() if render is not None else "")
        self.result_value.setStyleSheet(f"color: {colour};" if colour else "")

    def show_error(self, error: ErrorInfo) -> None:
        self.last_error = error
        self.set_result(lambda: self.tr("Error: {text}").format(text=error.text()), "#c62828")
        self.log_console.add([LogRecord(time=time.time(), level="error", source=ops.HOST, text=error.text())])

    def _show_progress(self, snapshot: Snapshot) -> None:
        self._last_snapshot = snapshot
        self.progress_shown.emit(snapshot)
        phase = phase_label(snapshot.phase)
        if snapshot.total:
            self.progress.setValue(int(snapshot.fraction * 1000))
            self.progress.setFormat(f"{phase} {snapshot.fraction * 100:.0f} %")
            rate = f"{human_bytes(snapshot.rate)}/s" if snapshot.rate else "–"
            self.progress_text.setText(
                self.tr("{phase}: {done} of {total}, {rate}, {eta} left").format(
                    phase=phase,
                    done=human_bytes(snapshot.done),
                    total=human_bytes(snapshot.total),
                    rate=rate,
                    eta=format_eta(snapshot.eta),
                )
            )
        else:
            self.progress.setFormat(phase)
            if snapshot.phase == "done":
                self.progress.setValue(1000)
            message = flow_message(snapshot.message) if snapshot.message else ""
            self.progress_text.setText(f"{phase}: {message}" if message else phase)

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    # -- connection ------------------------------------------------------------------------------------------
    def selected_url(self) -> str:
        url = self.url_edit.text().strip()
        return url or str(self.port_combo.currentData() or EMULATED)

    def toggle_connection(self) -> None:
        if self.target is not None:
            self.disconnect_device()
        else:
            self.connect_device()

    def connect_device(self, url: str | None = None) -> Worker | None:
        url = url or self.selected_url()
        baud = self.baud()
        spec = self.emulator_spec
        pool = self.emulators

        def work(cancel: CancelToken, adapter: EventAdapter) -> tuple[Target, DeviceSnapshot]:
            real = url
            if url == EMULATED:
                adapter.step("connect", "starting the emulated STM32")
                real = pool.start(spec)
            target = Target(real, baud)
            return target, ops.read_device(target, cancel=cancel, adapter=adapter)

        def done(result: tuple[Target, DeviceSnapshot]) -> None:
            self.target, device = result
            self._set_device(device)
            self.statusBar().showMessage(self.tr("Connected to {url}").format(url=self.target.url))

        return self._run("connect", work, done)

    def disconnect_device(self) -> None:
        if self.busy:
            return
        self.target = None
        self._cancelled_flash = False
        self._set_device(None)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.progress_text.setText("")
        self._last_snapshot = None
        self.set_result(None)
        self.statusBar().showMessage(self.tr("Disconnected"))

    def _set_device(self, device: DeviceSnapshot | None) -> None:
        self.device = device
        self._show_device()
        self._rejudge()
        self.device_changed.emit(device)
        self.terminal.set_target(self.target if device is not None and device.kind == "iap" else None)
        if device is not None and device.kind == "iap":
            self.tabs.setCurrentWidget(self.terminal)

    def _show_device(self) -> None:
        device = self.device
        info = device.info if device is not None else None
        self.connect_button.setText(self.tr("Disconnect") if self.target is not None else self.tr("Connect"))
        if device is None:
            for value in (self.kind_value, self.chip_value, self.uid_value, self.loader_value):
                value.setText("–")
        elif device.kind == "iap":
            self.kind_value.setText(self.tr("classic AN4657 IAP bootloader (YMODEM)"))
            for value in (self.chip_value, self.uid_value, self.loader_value):
                value.setText(self.tr("not reported by an IAP menu"))
        elif info is not None:
            self.kind_value.setText(
                self.tr("stm32ota bootloader, protocol {major}.{minor}").format(
                    major=info.protocol_version >> 8, minor=info.protocol_version & 0xFF
                )
            )
            self.chip_value.setText(
                self.tr("0x{chip:03X}, board {board}, {flash} flash").format(
                    chip=info.chip_id, board=info.board_id, flash=human_bytes(info.flash.size)
                )
            )
            self.uid_value.setText(info.uid.hex())
            self.loader_value.setText(info.bootloader_version or "?")
        self.layout_bar.set_info(info)
        self.slot_model.set_info(info)

    # -- firmware --------------------------------------------------------------------------------------------
    def _ask_open(self) -> None:
        patterns = " ".join(f"*{s}" for s in FIRMWARE_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(
            self,
            self.tr("Open firmware"),
            "",
            self.tr("Firmware ({patterns});;All files (*)").format(patterns=patterns),
        )
        if path:
            self.open_file(Path(path))

    def open_file(self, path: Path) -> FileSummary:
        self.summary = inspect_file(path)
        if self.summary.problem is None:
            self._remember(path)
        self._show_summary()
        self._rejudge()
        return self.summary

    def _show_summary(self) -> None:
        summary = self.summary
        if summary is None:
            self.file_value.setText(self.tr("drop a .bin, .hex, .srec or .elf here, or Open…"))
            self.what_value.setText("–")
            self.digest_value.setText("–")
            return
        self.file_value.setText(str(summary.path))
        if summary.problem:
            self.what_value.setText(self.tr("unreadable"))
            self.digest_value.setText("–")
            return
        fmt = summary.format.upper()
        if summary.kind == "signed":
            tag = (
                self.tr(", chip 0x{chip:03X} board {board}").format(chip=summary.chip_id, board=summary.board_id)
                if summary.chip_id is not None
                else self.tr(", no chip tag")
            )
            key = summary.key_hash[:12] + "…" if summary.key_hash else self.tr("none")
            self.what_value.setText(
                self.tr(
                    "signed image {version} ({fmt}, {size}), security counter {counter}, "
                    "{sig} signature by key {key}{tag}"
                ).format(
                    version=summary.version,
                    fmt=fmt,
                    size=human_bytes(summary.size),
                    counter=summary.security_counter if summary.security_counter is not None else 0,
                    sig=summary.signature_type or self.tr("no"),
                    key=key,
                    tag=tag,
                )
            )
        else:
            where = f" at 0x{summary.address:08X}" if summary.address is not None else ""
            self.what_value.setText(
                self.tr("raw application ({fmt}, {size}{where}), not signed").format(
                    fmt=fmt, size=human_bytes(summary.size), where=where
                )
            )
        self.digest_value.setText(summary.sha256[:32] + "…")
        self.digest_value.setToolTip(summary.sha256)

    def _rejudge(self) -> None:
        if self.summary is None:
            self.verdict = None
            self.verdict_value.setText("")
        else:
            self.verdict = judge(
                self.summary,
                self.device,
                allow_downgrade=self.downgrade_check.isChecked(),
                force=self.force_check.isChecked(),
            )
            neutral = self.device is None and not self.summary.problem
            if neutral:
                text = self.tr("connect a device to check the file against it")
            elif self.verdict.slug == "same-version":  # typically: just flashed it; not a mistake
                neutral = True
                text = self.tr("The device already runs this version; tick “Reinstall same version” to flash it again.")
            elif self.verdict.ok:
                text = self.tr("Ready to flash: {reason}").format(reason=verdict_text(self.verdict))
            else:
                text = self.tr("Refused ({slug}): {reason}").format(
                    slug=self.verdict.slug or "?",
                    reason=_without_slug(verdict_text(self.verdict), self.verdict.slug),
                )
                hint = verdict_hint(self.verdict)
                if hint:
                    text += "\n" + self.tr("Fix: {hint}").format(hint=hint)
            mark = "" if neutral else "✔ " if self.verdict.ok else "✘ "
            self.verdict_value.setText(mark + text)
            colour = "#616161" if neutral else "#2e7d32" if self.verdict.ok else "#c62828"
            self.verdict_value.setStyleSheet(f"color: {colour};")
            self.verdict_changed.emit(self.verdict)
        self._update_actions()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            self.open_file(Path(urls[0].toLocalFile()))
            event.acceptProposedAction()

    # -- actions ---------------------------------------------------------------------------------------------
    def flash_blocker(self) -> str | None:
        """Why Flash is disabled, or None."""
        if self.busy:
            return self.tr("an operation is running")
        if self.device is None:
            return self.tr("connect a device first")
        if self.summary is None:
            return self.tr("open a firmware file first")
        if self.verdict is None or not self.verdict.ok:
            if self.verdict is None:
                return self.tr("the file was not checked")
            return _without_slug(verdict_text(self.verdict), self.verdict.slug)
        return None

    def _update_actions(self) -> None:
        blocker = self.flash_blocker()
        self.flash_button.setEnabled(blocker is None)
        self.flash_button.setToolTip(blocker or "")
        self.flash_button.setText(self.tr("Resume flash") if self._cancelled_flash else self.tr("Flash"))
        ota = self.device is not None and self.device.kind == "ota" and not self.busy
        for button in (self.activate_button, self.confirm_button, self.rollback_button, self.reset_button):
            button.setEnabled(ota)
        self.cancel_button.setEnabled(self.busy)
        self.connect_button.setEnabled(not self.busy)
        self.port_combo.setEnabled(not self.busy and self.target is None)

    def flash(self) -> Worker | None:
        blocker = self.flash_blocker()
        if blocker is not None:
            if not self.busy:
                self.progress.setValue(0)
                self.progress.setFormat("")
                self.progress_text.setText("")
            self.show_error(ErrorInfo(self.tr("cannot flash: {reason}").format(reason=blocker)))
            return None
        assert self.target is not None and self.summary is not None and self.device is not None
        target, summary = self.target, self.summary
        options = FlashOptions(
            protocol="ymodem" if self.device.kind == "iap" else "ota",
            baud=target.baud,
            allow_downgrade=self.downgrade_check.isChecked(),
            force=self.force_check.isChecked(),
        )

        def work(cancel: CancelToken, adapter: EventAdapter) -> tuple[FlashResult, DeviceSnapshot]:
            return ops.flash(target, summary.data, summary.name, options, cancel=cancel, adapter=adapter)

        def done(result: tuple[FlashResult, DeviceSnapshot]) -> None:
            self.last_result, device = result
            self._cancelled_flash = False
            res = self.last_result
            seconds = res.ended - res.started if res.ended > res.started else sum(p.seconds for p in res.phases)

            def render() -> str:
                resumed = (
                    self.tr(", resumed at {offset}").format(offset=human_bytes(res.resumed_from))
                    if res.resumed_from
                    else ""
                )
                return self.tr("Done: {size} in {seconds:.1f} s at {baud} baud{resumed}.").format(
                    size=human_bytes(res.image_size), seconds=seconds, baud=res.baud, resumed=resumed
                )

            self.set_result(render, "#2e7d32")
            self.progress.setValue(1000)
            self._set_device(device if device.kind == "ota" else self.device)

        self._flash_protocol = options.protocol
        worker = self._run("flash", work, done)
        if worker is not None:
            self.progress.setValue(0)
        return worker

    def _device_action(
        self, name: str, fn: Callable[..., DeviceSnapshot], done_text: Callable[[], str]
    ) -> Worker | None:
        if self.target is None:
            self.show_error(ErrorInfo(self.tr("connect a device first")))
            return None
        target = self.target

        def work(cancel: CancelToken, adapter: EventAdapter) -> DeviceSnapshot:
            return fn(target, cancel=cancel, adapter=adapter)

        def done(device: DeviceSnapshot) -> None:
            self._set_device(device)
            self.set_result(done_text, "#2e7d32")

        return self._run(name, work, done)

    def activate_and_reboot(self) -> Worker | None:
        return self._device_action(
            "activate",
            ops.activate_and_reboot,
            lambda: self.tr("Rebooted into the new image: confirm it when it works."),
        )

    def confirm(self) -> Worker | None:
        return self._device_action("confirm", ops.confirm, lambda: self.tr("The running image is confirmed."))

    def rollback(self) -> Worker | None:
        return self._device_action("rollback", ops.rollback, lambda: self.tr("Rolled back to the previous image."))

    def reset(self) -> Worker | None:
        return self._device_action("reset", ops.reset, lambda: self.tr("The device restarted."))

    # -- closing ---------------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        self._save_settings()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        from .workers import wait_all

        self._port_timer.stop()
        self.terminal.stop()
        self.batch.stop()
        self.gateway.shutdown()
        wait_all()
        if self._own_emulators:
            self.emulators.close()
