"""gooseBit (PyPI ``goosebit``, a Python hawkBit-DDI server) as a real peer for the server and gateway tests.

gooseBit pins FastAPI/Tortoise/pydantic versions that need not agree with ours, so it lives in a venv of its
own: ``.ci/run`` creates it at ``~/.cache/stm32ota/goosebit-venv`` (``STM32OTA_GOOSEBIT_VENV`` overrides the
path).  :func:`require_goosebit` finds it and skips with a reason on a laptop without it; under ``CI`` a
missing venv is a failure.

:class:`GooseBit` runs one instance headless: a settings YAML (``GOOSEBIT_SETTINGS``) that points the SQLite
database and the artifacts into a temporary folder (the defaults point into site-packages), ``aerich upgrade``
to create the schema (gooseBit does not create it and refuses to start without it), then uvicorn on a socket
that we bound to a free loopback port and pass by file descriptor (no port race).  The first admin is created
through ``POST /setup``, which answers with the JWT the admin API takes as ``Authorization: Bearer``.
``docs/peers.md`` has the facts this relies on, and where gooseBit differs from hawkBit.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import IN_CI

GOOSEBIT_VERSION = "0.2.12"
VENV_ENV = "STM32OTA_GOOSEBIT_VENV"
DEFAULT_VENV = Path.home() / ".cache" / "stm32ota" / "goosebit-venv"
INSTALL_HINT = (
    f"run .ci/run, or: python3 -m venv {DEFAULT_VENV} && {DEFAULT_VENV}/bin/pip install goosebit=={GOOSEBIT_VERSION}"
)

START_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 30.0
ADMIN_USER = "admin@stm32ota.test"
ADMIN_PASSWORD = "stm32ota-test-only"
#: gooseBit keeps ``auth_token`` in a 32-character column and answers 422 to a longer one.
MAX_TOKEN_LENGTH = 32
#: The device states gooseBit's ``last_state`` column holds (``UpdateStateEnum``).
STATE_REGISTERED = 2


#: Per process: the empty database ``aerich upgrade`` made once, by the venv Python it ran with.  Every later
#: :meth:`GooseBit.prepare` copies it (a file copy instead of a ~2-4 s interpreter start with Tortoise's imports),
#: which yields the same file the migrations would: they are fixed by the pinned gooseBit version.
_SCHEMA_TEMPLATES: dict[Path, Path] = {}


def _keep_template(db_path: Path) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="stm32ota-goosebit-schema-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    template = folder / db_path.name
    shutil.copyfile(db_path, template)
    return template


class GooseBitError(RuntimeError):
    """gooseBit did not start, or its admin API refused a set-up request."""


def goosebit_venv() -> Path:
    return Path(os.environ.get(VENV_ENV, str(DEFAULT_VENV)))


def find_goosebit() -> Path | None:
    """The venv's Python if it holds gooseBit, aerich and uvicorn, else None (nothing is imported here)."""
    venv = goosebit_venv()
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    for site in venv.glob("lib/python3*/site-packages"):
        if all((site / package / "__init__.py").exists() for package in ("goosebit", "aerich", "uvicorn")):
            return python
    return None


def goosebit_site_packages(python: Path) -> Path:
    for site in python.parent.parent.glob("lib/python3*/site-packages"):
        if (site / "goosebit").is_dir():
            return site
    raise GooseBitError(f"no goosebit package under {python.parent.parent}")


def require_goosebit() -> Path:
    """The venv Python; skips the test with a reason when gooseBit is not installed (fails under CI)."""
    import pytest

    python = find_goosebit()
    if python is None:
        message = f"gooseBit {GOOSEBIT_VERSION} venv not found at {goosebit_venv()} ({INSTALL_HINT})"
        if IN_CI:
            pytest.fail(f"peer required under CI: {message}", pytrace=False)
        pytest.skip(message)
    return python


def _free_loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


def _multipart(field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class GooseBit:
    """One gooseBit process on 127.0.0.1, its data in ``workdir``.  Use as a context manager.

    ``device_auth`` is gooseBit's ``device_auth.mode`` (``strict``: every device is created through the admin
    API with its token, and DDI requests need ``Authorization: TargetToken``) or None (DDI is anonymous).
    """

    def __init__(
        self,
        python: Path,
        workdir: Path,
        *,
        device_auth: str | None = "strict",
        poll_time: str = "00:05:00",
        tenant: str = "DEFAULT",
        log_level: str = "WARNING",
    ) -> None:
        self.python = python
        self.workdir = workdir
        self.device_auth = device_auth
        self.poll_time = poll_time
        self.tenant = tenant
        self.log_level = log_level
        self.settings_path = workdir / "goosebit.yaml"
        self.db_path = workdir / "goosebit.sqlite3"
        self.log_path = workdir / "goosebit.log"
        self._sock: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._jwt: str | None = None
        self.base_url = ""

    # -- life cycle -------------------------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env["GOOSEBIT_SETTINGS"] = str(self.settings_path)
        return env

    def prepare(self) -> None:
        """Write the settings and create the schema (``aerich upgrade``, once per process; later a copy of that
        empty database); the database can be seeded after."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        auth = (
            f"device_auth:\n  enable: true\n  mode: {self.device_auth}\n"
            if self.device_auth
            else "device_auth:\n  enable: false\n"
        )
        logging_config = (
            "logging:\n  version: 1\n  disable_existing_loggers: false\n"
            "  handlers:\n    console:\n      class: logging.StreamHandler\n"
            f"  root:\n    level: {self.log_level}\n    handlers: [console]\n"
        )
        self.settings_path.write_text(
            f"db_uri: sqlite://{self.db_path}\n"
            f"artifacts_dir: {self.workdir / 'artifacts'}\n"
            f'poll_time: "{self.poll_time}"\n'
            f"tenant: {self.tenant}\n"
            "track_device_ip: false\n" + auth + logging_config
        )
        template = _SCHEMA_TEMPLATES.get(self.python)
        if template is None:
            self._create_schema()
            _SCHEMA_TEMPLATES[self.python] = _keep_template(self.db_path)
        else:
            shutil.copyfile(template, self.db_path)

    def _create_schema(self) -> None:
        """``aerich upgrade`` in ``workdir``: gooseBit's own migrations create its tables."""
        migrations = goosebit_site_packages(self.python) / "goosebit" / "db" / "migrations"
        (self.workdir / "pyproject.toml").write_text(
            '[tool.aerich]\ntortoise_orm = "goosebit.db.config.TORTOISE_CONF"\n'
            f'location = "{migrations}"\nsrc_folder = "./."\n'
        )
        done = subprocess.run(
            [str(self.python), "-m", "aerich", "upgrade"],
            cwd=self.workdir,
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0 or not self.db_path.exists():
            output = done.stdout[-1500:] + done.stderr[-1500:]
            raise GooseBitError(f"aerich upgrade failed ({done.returncode}): {output}")

    def start(self) -> None:
        if not self.settings_path.exists():
            self.prepare()
        self._sock = _free_loopback_socket()
        host, port = self._sock.getsockname()
        self.base_url = f"http://{host}:{port}"
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    str(self.python),
                    "-m",
                    "uvicorn",
                    "goosebit:app",
                    "--fd",
                    str(self._sock.fileno()),
                    "--log-level",
                    self.log_level.lower(),
                    "--no-access-log",
                ],
                cwd=self.workdir,
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(self._sock.fileno(),),
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self._process.poll() is not None:
                raise GooseBitError(f"gooseBit exited with {self._process.returncode}: {self.log_tail()}")
            with contextlib.suppress(OSError):
                if self.request("GET", "/openapi.json", timeout=2.0).status == 200:
                    break
            if time.monotonic() > deadline:
                raise GooseBitError(f"gooseBit did not answer within {START_TIMEOUT_S:.0f} s: {self.log_tail()}")
            time.sleep(0.1)
        reply = self.request(
            "POST",
            "/setup",
            body=urllib.parse.urlencode({"username": ADMIN_USER, "password": ADMIN_PASSWORD}).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        if reply.status != 200:
            raise GooseBitError(f"POST /setup answered {reply.status}: {reply.body[:300]!r}")
        self._jwt = reply.json()["access_token"]

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._process = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> GooseBit:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def log_tail(self, limit: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return "(no log)"

    # -- HTTP ----------------------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = HTTP_TIMEOUT_S,
    ) -> Response:
        """One request to ``base_url + path``; an HTTP error status is returned, not raised."""
        request = urllib.request.Request(self.base_url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                return Response(reply.status, dict(reply.headers.items()), reply.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, dict(error.headers.items()), error.read())

    def api(self, method: str, path: str, payload: Any = None) -> Any:
        """An admin API call as the set-up admin; a non-2xx answer raises :class:`GooseBitError`."""
        headers = {"Authorization": f"Bearer {self._jwt}"}
        body = None
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        reply = self.request(method, path, body=body, headers=headers)
        if not 200 <= reply.status < 300:
            raise GooseBitError(f"{method} {path} answered {reply.status}: {reply.body[:500]!r}")
        return reply.json() if reply.body else None

    # -- what tests need -------------------------------------------------------------------------------------
    @property
    def ddi_root(self) -> str:
        """``http://host:port/{tenant}``: prepend to ``/controller/v1/{controllerId}``."""
        return f"{self.base_url}/{self.tenant}"

    def controller_url(self, controller_id: str) -> str:
        return f"{self.ddi_root}/controller/v1/{controller_id}"

    def add_device(self, controller_id: str, token: str | None = None) -> str:
        """Create ``controller_id`` through the admin API with a TargetToken (made up when not given)."""
        token = token or uuid.uuid4().hex
        if len(token) > MAX_TOKEN_LENGTH:
            raise GooseBitError(f"gooseBit keeps at most {MAX_TOKEN_LENGTH} characters of a token")
        self.api("PUT", "/api/v1/devices", {"devices": [controller_id], "auth_token": token})
        return token

    def upload_software(self, bundle: bytes, filename: str) -> int:
        """Upload a ``.swu`` bundle; gooseBit answers with its software id (which it also uses as action id)."""
        body, content_type = _multipart("file", filename, bundle)
        reply = self.request(
            "PUT",
            "/api/v1/software",
            body=body,
            headers={"Authorization": f"Bearer {self._jwt}", "Content-Type": content_type},
        )
        if reply.status != 200:
            raise GooseBitError(f"software upload answered {reply.status}: {reply.body[:500]!r}")
        return int(reply.json()["id"])

    def assign(self, controller_id: str, software_id: int, *, force: bool = False) -> None:
        """Point the device at one software (``update_mode`` Assigned); ``force`` re-offers it after an Error."""
        payload: dict[str, Any] = {"devices": [controller_id], "software": str(software_id)}
        if force:
            payload["force_update"] = True
        self.api("PATCH", "/api/v1/devices", payload)

    def create_rollout(self, software_id: int, *, name: str = "rollout", feed: str = "default") -> int:
        reply = self.api("PUT", "/api/v1/rollouts", {"name": name, "feed": feed, "software_id": software_id})
        return int(reply["id"])

    def device(self, controller_id: str) -> dict[str, Any]:
        """The device as the list endpoint shows it (``GET /api/v1/devices/{id}`` fails once software is set)."""
        for device in self.api("GET", "/api/v1/devices")["devices"]:
            if device["id"] == controller_id:
                return dict(device)
        raise GooseBitError(f"gooseBit does not know {controller_id}")

    def seed_devices(
        self, pairs: Iterable[tuple[str, str]], *, board: str = "default", revision: str = "default"
    ) -> int:
        """Insert registered devices with their tokens straight into the (prepared, not running) database.

        For the benchmark: 10,000 admin API calls take minutes, one SQLite transaction a second.  The rows
        look as the API and a configData would leave them: hardware ``board``/``revision``, state Registered,
        update mode Rollout on feed ``default``.
        """
        if self._process is not None:
            raise GooseBitError("seed the database before start()")
        with contextlib.closing(sqlite3.connect(self.db_path)) as db, db:
            db.execute(
                "INSERT INTO hardware (model, revision) SELECT ?, ? WHERE NOT EXISTS "
                "(SELECT 1 FROM hardware WHERE model = ? AND revision = ?)",
                (board, revision, board, revision),
            )
            (hardware_id,) = db.execute(
                "SELECT id FROM hardware WHERE model = ? AND revision = ?", (board, revision)
            ).fetchone()
            columns = [row[1] for row in db.execute("PRAGMA table_info(device)")]
            rows = [(cid, token, hardware_id) for cid, token in pairs]
            fixed = {"force_update": 0, "feed": "default", "update_mode": 3, "last_state": STATE_REGISTERED}
            fixed = {key: value for key, value in fixed.items() if key in columns}
            names = ["id", "auth_token", "hardware_id", *fixed]
            placeholders = ", ".join("?" * len(names))
            db.executemany(
                f"INSERT INTO device ({', '.join(names)}) VALUES ({placeholders})",
                [(*row, *fixed.values()) for row in rows],
            )
        return len(rows)


@contextlib.contextmanager
def running_goosebit(workdir: Path, **settings: Any) -> Iterator[GooseBit]:
    """A started gooseBit (the venv must exist: see :func:`require_goosebit`)."""
    python = find_goosebit()
    if python is None:
        raise GooseBitError(f"gooseBit venv not found at {goosebit_venv()} ({INSTALL_HINT})")
    with GooseBit(python, workdir, **settings) as server:
        yield server
