"""The gateway tab: the field gateway (:class:`relay.gateway.Gateway`) run in-process, a row per port, its log.

The gateway is asyncio; :class:`GatewayRunner` gives it a thread and an event loop of its own, and talks to the
window only through signals.  Every :data:`PUBLISH_INTERVAL_S` the runner looks at the ports' public
:class:`~relay.gateway.relay.PortStatus` and, when something changed, sends one copy of all of them (plain
dicts, so nothing the gateway thread mutates is shared), together with the gateway's log records collected since
the last look.  The GUI thread never waits on the gateway: Start returns at once, Stop asks the loop to stop and
the ``stopped`` signal says when it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QCoreApplication,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QStandardPaths,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from protocol.errors import Stm32OtaError
from relay.gateway import ConfigError, Gateway, GatewayConfig, load_config

from .batch import ProgressDelegate
from .emulated import EmulatorPool, EmulatorSpec
from .log_console import LogConsole
from .messages import error_text, gateway_message, gateway_state_label, phase_label
from .operations import DEVICE, HOST, LogRecord
from .ports import EMULATED
from .workers import ErrorInfo

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["GatewayPortModel", "GatewayRunner", "GatewayTab"]

log = logging.getLogger(__name__)

PUBLISH_INTERVAL_S = 0.05  # how often the runner looks at the ports (it only sends what changed)
GATEWAY_LOGGER = "relay"  # the gateway's modules log under relay.gateway.*, its transports under relay.*
STOP_WAIT_MS = 10_000
ModelIndex = QModelIndex | QPersistentModelIndex
_LEVELS = {logging.ERROR: "error", logging.WARNING: "warning", logging.INFO: "info"}


class GatewaySignals(QObject):
    started = Signal(str)  # the gateway's local status URL ("" without one)
    status = Signal(object)  # list[dict[str, Any]]: every port's PortStatus.to_json()
    logs = Signal(object)  # list[LogRecord]
    errored = Signal(object)  # ErrorInfo
    stopped = Signal()


class _Collector(logging.Handler):
    """The gateway's log records, kept until the runner sends them on (thread-safe: any thread may log)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self._records: list[LogRecord] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        level = next((name for no, name in _LEVELS.items() if record.levelno >= no), "debug")
        try:
            text = record.getMessage()
        except Exception:  # a bad format string in someone's log call must not stop the gateway
            text = str(record.msg)
        device = getattr(record, "device_level", None)
        if isinstance(device, str):  # a board's own log line, relayed by the gateway (relay.gateway.device)
            ms = getattr(record, "device_ms", None)
            entry = LogRecord(time=record.created, level=device, source=DEVICE, text=text, device_ms=ms)
        else:
            entry = LogRecord(time=record.created, level=level, source=HOST, text=text)
        with self._guard:
            self._records.append(entry)

    def take(self) -> list[LogRecord]:
        with self._guard:
            records, self._records = self._records, []
        return records


class GatewayRunner:
    """One gateway at a time on its own thread and event loop; ``signals`` live on the GUI thread.

    ``build`` runs on the gateway's thread (it may block: start emulators, read key files) and returns the
    configuration; an error it raises, or the gateway's, arrives as ``errored`` followed by ``stopped``."""

    def __init__(self, *, time_factor: float = 1.0, name: str = "stm32ota-gui-gateway") -> None:
        self.signals = GatewaySignals()
        self.time_factor = time_factor
        self.name = name
        self.gateway: Gateway | None = None  # while it runs (tests look inside; the GUI only uses signals)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = threading.Event()
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, build: Callable[[], GatewayConfig]) -> bool:
        if self.running:
            return False
        self._stop_requested.clear()
        self._thread = threading.Thread(target=self._main, args=(build,), name="gateway", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        """Ask the gateway to stop (returns at once; ``stopped`` follows)."""
        self._stop_requested.set()
        with self._lock:
            loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)

    def wait(self, timeout_ms: int = STOP_WAIT_MS) -> bool:
        """Stop and wait for the thread (at exit only: this blocks)."""
        self.stop()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_ms / 1000)
            return not thread.is_alive()
        return True

    def _main(self, build: Callable[[], GatewayConfig]) -> None:
        collector = _Collector()
        logger = logging.getLogger(GATEWAY_LOGGER)
        old_level = logger.level
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)  # the tab shows what `stm32ota gateway` prints at its default level
        logger.addHandler(collector)
        try:
            asyncio.run(self._serve(build, collector))
        except Stm32OtaError as err:
            self.signals.errored.emit(ErrorInfo(error_text(err), err.hint))
        except OSError as err:
            self.signals.errored.emit(ErrorInfo(str(err.strerror or err)))
        except Exception as err:  # a bug must not take the window down: say it, log the traceback
            log.exception("the gateway failed")
            self.signals.errored.emit(ErrorInfo(f"the gateway failed unexpectedly: {err}", "see the log file"))
        finally:
            logger.removeHandler(collector)
            logger.setLevel(old_level)
            records = collector.take()
            if records:
                self.signals.logs.emit(records)
            self.gateway = None
            self.signals.stopped.emit()

    async def _serve(self, build: Callable[[], GatewayConfig], collector: _Collector) -> None:
        stop = asyncio.Event()
        with self._lock:
            self._loop, self._stop = asyncio.get_running_loop(), stop
        try:
            config = await asyncio.to_thread(build)
            if self._stop_requested.is_set():
                return
            gateway = Gateway(config, name=self.name, time_factor=self.time_factor)
            self.gateway = gateway
            try:
                await gateway.start()
                self.signals.started.emit(gateway.status_url or "")
                last: list[dict[str, Any]] = []
                while True:
                    last = self._publish(gateway, collector, last)
                    if self._stop_requested.is_set():
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), PUBLISH_INTERVAL_S)
                    if stop.is_set():
                        break
            finally:
                await gateway.stop()
                self._publish(gateway, collector, [])
        finally:
            with self._lock:
                self._loop, self._stop = None, None

    def _publish(self, gateway: Gateway, collector: _Collector, last: list[dict[str, Any]]) -> list[dict[str, Any]]:
        records = collector.take()
        if records:
            self.signals.logs.emit(records)
        status = [worker.status.to_json() for worker in gateway.workers]
        if status != last:
            self.signals.status.emit(status)
        return status


class GatewayPortModel(QAbstractTableModel):
    """A row per gateway port: port, device, running version, state, job, phase, progress, message."""

    COLUMNS = 8
    PROGRESS_COLUMN = 6

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        if len(rows) != len(self.rows):
            self.beginResetModel()
            self.rows = list(rows)
            self.endResetModel()
            return
        for i, (old, new) in enumerate(zip(self.rows, rows, strict=True)):
            if old != new:
                self.rows[i] = new
                self.dataChanged.emit(self.index(i, 0), self.index(i, self.COLUMNS - 1))

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's own signature
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's own signature
        return 0 if parent.isValid() else self.COLUMNS

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return (
                QCoreApplication.translate("Gateway", "Port"),
                QCoreApplication.translate("Gateway", "Device"),
                QCoreApplication.translate("Gateway", "Runs"),
                QCoreApplication.translate("Gateway", "State"),
                QCoreApplication.translate("Gateway", "Job"),
                QCoreApplication.translate("Gateway", "Phase"),
                QCoreApplication.translate("Gateway", "Progress"),
                QCoreApplication.translate("Gateway", "Message"),
            )[section]
        return None

    @staticmethod
    def _updated(row: dict[str, Any]) -> bool:
        target = row.get("target_version")
        return bool(row.get("action_id") and target and row.get("version") == target and row.get("state") == "idle")

    @classmethod
    def _fraction(cls, row: dict[str, Any]) -> float | None:
        if row.get("state") in ("downloading", "relaying"):
            return float(row.get("progress") or 0.0)
        return 1.0 if cls._updated(row) else None

    @classmethod
    def _message(cls, row: dict[str, Any]) -> str:
        message = str(row.get("message") or "")
        if message:
            return gateway_message(message)
        if cls._updated(row):  # the gateway clears its "updated to" once it has read the device again
            return gateway_message(f"updated to {row['target_version']}")
        return ""

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            job = ""
            if row.get("action_id"):
                job = QCoreApplication.translate("Gateway", "#{action} → {version}").format(
                    action=row["action_id"], version=row.get("target_version") or "?"
                )
            busy = row.get("state") in ("downloading", "relaying")
            fraction = self._fraction(row)
            values = (
                row.get("url", ""),
                row.get("controller_id") or "",
                row.get("version") or ("–" if row.get("controller_id") else ""),
                gateway_state_label(str(row.get("state", ""))),
                job,
                phase_label(str(row["phase"])) if row.get("phase") and busy else "",
                f"{fraction * 100:.0f} %" if fraction is not None else "",
                self._message(row),
            )
            return values[column]
        if role == Qt.ItemDataRole.UserRole:
            return self._fraction(row)
        if role == Qt.ItemDataRole.ForegroundRole and column == 3:
            state = row.get("state")
            if state == "error":
                return QColor("#c62828")
            if state == "absent":
                return QColor("#757575")
            if state in ("downloading", "relaying"):
                return QColor("#1565c0")
        return None


def default_state_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".stm32ota") / "gateway"


class GatewayTab(QWidget):
    """Server URL and gateway token, the ports to serve, Start/Stop, the port table and the gateway's log."""

    running_changed = Signal(bool)

    def __init__(self, window: MainWindow, *, time_factor: float = 1.0) -> None:
        super().__init__(window)
        self.window_ = window
        self.runner = GatewayRunner(time_factor=time_factor)
        self.model = GatewayPortModel(self)
        self.last_error: ErrorInfo | None = None
        self.status_url = ""
        self._state = "stopped"
        self.runner.signals.started.connect(self._started)
        self.runner.signals.status.connect(self._status)
        self.runner.signals.errored.connect(self._errored)
        self.runner.signals.stopped.connect(self._stopped)

        settings = window.settings
        self.server_edit = QLineEdit(str(settings.value("gateway/server", "")), self)
        self.tenant_edit = QLineEdit(str(settings.value("gateway/tenant", "DEFAULT")), self)
        self.token_edit = QLineEdit(self)
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.keys_edit = QLineEdit(str(settings.value("gateway/keys", "")), self)
        self.keys_button = QPushButton(self)
        self.state_edit = QLineEdit(str(settings.value("gateway/state_dir", str(default_state_dir()))), self)
        self.baud_combo = QComboBox(self)
        from .main_window import BAUD_RATES

        for rate in BAUD_RATES:
            self.baud_combo.addItem(str(rate), rate)
        self.baud_combo.setCurrentText(str(settings.value("gateway/baud", "115200")))
        self.ports = QListWidget(self)
        self.extra_edit = QLineEdit(self)
        self.emulated = QSpinBox(self)
        self.emulated.setRange(0, 16)
        self.start_button = QPushButton(self)
        self.stop_button = QPushButton(self)
        self.state_value = QLabel(self)
        self.state_value.setWordWrap(True)
        self.state_value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.server_label, self.tenant_label, self.token_label, self.keys_label = (QLabel(self) for _ in range(4))
        self.state_label, self.baud_label, self.ports_label, self.extra_label = (QLabel(self) for _ in range(4))
        self.emulated_label = QLabel(self)

        keys_row = QHBoxLayout()
        keys_row.addWidget(self.keys_edit, 1)
        keys_row.addWidget(self.keys_button)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow(self.server_label, self.server_edit)
        form.addRow(self.tenant_label, self.tenant_edit)
        form.addRow(self.token_label, self.token_edit)
        form.addRow(self.keys_label, keys_row)
        form.addRow(self.state_label, self.state_edit)
        form.addRow(self.baud_label, self.baud_combo)
        form.addRow(self.extra_label, self.extra_edit)
        form.addRow(self.emulated_label, self.emulated)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        left = QVBoxLayout()
        left.addLayout(form)
        left.addWidget(self.ports_label)
        left.addWidget(self.ports, 1)
        left.addLayout(buttons)
        left.addWidget(self.state_value)
        left_widget = QWidget(self)
        left_widget.setLayout(left)
        left_widget.setMinimumWidth(380)
        left_widget.setMaximumWidth(520)

        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)  # one line a port; the whole message is the cell's tooltip
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setItemDelegateForColumn(GatewayPortModel.PROGRESS_COLUMN, ProgressDelegate(self.table))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(GatewayPortModel.PROGRESS_COLUMN, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(GatewayPortModel.PROGRESS_COLUMN, 110)
        header.setStretchLastSection(True)
        self.log_console = LogConsole(self)
        self.runner.signals.logs.connect(self.log_console.add)
        right = QSplitter(Qt.Orientation.Vertical, self)
        right.addWidget(self.table)
        right.addWidget(self.log_console)
        right.setStretchFactor(0, 1)
        right.setStretchFactor(1, 1)
        right.setChildrenCollapsible(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(left_widget)
        layout.addWidget(right, 1)

        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.keys_button.clicked.connect(self._ask_keys)
        self.retranslate()
        self._enable()

    # -- text ------------------------------------------------------------------------------------------------
    def retranslate(self) -> None:
        self.server_label.setText(self.tr("Server URL:"))
        self.server_edit.setPlaceholderText(self.tr("https://ota.example.com"))
        self.tenant_label.setText(self.tr("Tenant:"))
        self.token_label.setText(self.tr("Gateway token:"))
        self.token_edit.setPlaceholderText(self.tr("from the server's admin (not saved)"))
        self.keys_label.setText(self.tr("Trusted key:"))
        self.keys_edit.setPlaceholderText(self.tr("public key .pem, or a folder of them"))
        self.keys_button.setText(self.tr("Browse…"))
        self.state_label.setText(self.tr("State folder:"))
        self.baud_label.setText(self.tr("Baud:"))
        self.extra_label.setText(self.tr("More ports:"))
        self.extra_edit.setPlaceholderText(self.tr("socket://host:4001, rfc2217://…"))
        self.extra_edit.setToolTip(self.tr("Any pyserial URLs or device paths, comma-separated"))
        self.emulated_label.setText(self.tr("Emulated boards:"))
        self.ports_label.setText(self.tr("Serial ports to serve (tick):"))
        self.start_button.setText(self.tr("Start gateway"))
        self.stop_button.setText(self.tr("Stop gateway"))
        self.model.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, GatewayPortModel.COLUMNS - 1)
        if self.model.rows:
            self.model.dataChanged.emit(
                self.model.index(0, 0), self.model.index(len(self.model.rows) - 1, GatewayPortModel.COLUMNS - 1)
            )
        self.log_console.retranslate()
        self._show_state()

    def _show_state(self) -> None:
        colour = "#616161"
        if self._state == "running":
            text = self.tr("Running.")
            if self.status_url:
                text += " " + self.tr("Status: {url}/status").format(url=self.status_url)
            colour = "#2e7d32"
        elif self._state == "starting":
            text = self.tr("Starting…")
        elif self._state == "stopping":
            text = self.tr("Stopping (a relay in progress is left resumable)…")
        elif self._state == "error" and self.last_error is not None:
            text = self.tr("Error: {text}").format(text=self.last_error.text())
            colour = "#c62828"
        else:
            text = self.tr("Stopped.")
        self.state_value.setText(text)
        self.state_value.setStyleSheet(f"color: {colour};")

    # -- ports -----------------------------------------------------------------------------------------------
    def refresh_ports(self, urls: list[str]) -> None:
        checked = set(self.selected_ports())
        self.ports.clear()
        for url in urls:
            if url == EMULATED:
                continue
            item = QListWidgetItem(url, self.ports)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if url in checked else Qt.CheckState.Unchecked)

    def selected_ports(self) -> list[str]:
        return [
            self.ports.item(i).text()
            for i in range(self.ports.count())
            if self.ports.item(i).checkState() == Qt.CheckState.Checked
        ]

    def port_urls(self) -> list[str]:
        extra = [u.strip() for u in self.extra_edit.text().split(",") if u.strip()]
        return self.selected_ports() + [u for u in extra if u not in self.selected_ports()]

    # -- start/stop ------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._state in ("starting", "running", "stopping")

    def start(self) -> bool:
        """Start the gateway with the form's settings (returns at once; False if the form is incomplete)."""
        if self.running:
            return False
        server = self.server_edit.text().strip()
        ports = self.port_urls()
        emulated = self.emulated.value()
        problem = None
        if not server:
            problem = ErrorInfo(self.tr("give the server's URL"), self.tr("for example https://ota.example.com"))
        elif not ports and not emulated:
            problem = ErrorInfo(
                self.tr("no serial ports to serve"), self.tr("tick a port, type a URL, or add emulated boards")
            )
        if problem is not None:
            self._errored(problem)
            return False
        token = self.token_edit.text().strip() or None
        keys = [k for k in (self.keys_edit.text().strip(),) if k]
        state_dir = Path(self.state_edit.text().strip() or default_state_dir())
        baud = int(self.baud_combo.currentData())
        tenant = self.tenant_edit.text().strip() or "DEFAULT"
        pool: EmulatorPool = self.window_.emulators
        spec = EmulatorSpec(mode="ota", chip=self.window_.emulator_spec.chip, baud=baud)

        def build() -> GatewayConfig:  # on the gateway's thread: starting emulators blocks
            urls = list(ports) + [pool.start(spec) for _ in range(emulated)]
            try:
                state_dir.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise ConfigError(
                    f"cannot create the state folder {state_dir}: {err.strerror or err}",
                    hint="choose a folder you may write to",
                ) from err
            return load_config(
                None,
                server=server,
                tenant=tenant,
                gateway_token=token,
                ports=urls,
                baud=baud,
                trusted_keys=keys,
                state_dir=state_dir,
                listen="127.0.0.1:0",
            )

        self._save_settings()
        self.last_error = None
        self.model.set_rows([])
        self._state = "starting"
        self.runner.start(build)
        self._enable()
        self._show_state()
        self.running_changed.emit(True)
        return True

    def stop(self) -> None:
        if self._state in ("starting", "running"):
            self._state = "stopping"
            self.runner.stop()
            self._enable()
            self._show_state()

    def shutdown(self) -> None:
        """At exit: stop the gateway and wait for its thread."""
        if self.runner.running:
            self.runner.wait()

    def _status(self, rows: list[dict[str, Any]]) -> None:
        """New port states: the table, and a log line for each change a technician follows (device found, job,
        phase, result) — the gateway itself logs only trouble at its default level."""
        before = {row.get("url"): row for row in self.model.rows}
        self.model.set_rows(rows)
        records = []
        for row in rows:
            old = before.get(row.get("url")) or {}
            url, cid = row.get("url"), row.get("controller_id") or "?"
            lines: list[tuple[str, str]] = []
            if row.get("controller_id") and row.get("controller_id") != old.get("controller_id"):
                lines.append(("info", f"{url}: device {cid} runs {row.get('version') or '?'}"))
            if row.get("action_id") and row.get("action_id") != old.get("action_id"):
                lines.append(("info", f"{url}: {cid}: job {row['action_id']} → {row.get('target_version') or '?'}"))
            if row.get("state") != old.get("state"):
                level = "error" if row.get("state") == "error" else "info"
                lines.append((level, f"{url}: {row.get('state')}"))
            if row.get("state") in ("downloading", "relaying") and row.get("phase") != old.get("phase"):
                lines.append(("info", f"{url}: {cid}: {row.get('phase')}"))
            if row.get("message") and row.get("message") != old.get("message"):
                lines.append(("warning" if row.get("state") == "error" else "info", f"{url}: {row['message']}"))
            records += [LogRecord(time=time.time(), level=lv, source=HOST, text=text) for lv, text in lines]
        if records:
            self.log_console.add(records)

    def _started(self, status_url: str) -> None:
        self.status_url = status_url
        if self._state == "starting":
            self._state = "running"
        self._enable()
        self._show_state()

    def _errored(self, error: ErrorInfo) -> None:
        self.last_error = error
        self.log_console.add([LogRecord(time=time.time(), level="error", source=HOST, text=error.text())])
        if not self.running:
            self._state = "error"
            self._show_state()

    def _stopped(self) -> None:
        self._state = "error" if self.last_error is not None else "stopped"
        self.status_url = ""
        self._enable()
        self._show_state()
        self.running_changed.emit(False)

    def _enable(self) -> None:
        running = self.running
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(self._state in ("starting", "running"))
        for widget in (
            self.server_edit,
            self.tenant_edit,
            self.token_edit,
            self.keys_edit,
            self.keys_button,
            self.state_edit,
            self.baud_combo,
            self.ports,
            self.extra_edit,
            self.emulated,
        ):
            widget.setEnabled(not running)

    # -- settings --------------------------------------------------------------------------------------------
    def _save_settings(self) -> None:
        settings = self.window_.settings
        settings.setValue("gateway/server", self.server_edit.text().strip())
        settings.setValue("gateway/tenant", self.tenant_edit.text().strip())
        settings.setValue("gateway/keys", self.keys_edit.text().strip())
        settings.setValue("gateway/state_dir", self.state_edit.text().strip())
        settings.setValue("gateway/baud", self.baud_combo.currentText())

    def _ask_keys(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, self.tr("Trusted public key"), "", self.tr("Public keys (*.pem);;All files (*)")
        )
        if path:
            self.keys_edit.setText(path)
