"""The "server under test" adapters the DDI conformance suite runs against.

An adapter knows what DDI leaves to the server's operator: how the server is started, how a device gets
registered with a TargetToken, how a release is assigned to it (a deployment), how an action is cancelled, and
how to read an action's state and a device's attributes back.  The tests then speak only DDI.

Three outcomes besides a pass, and they are kept apart:

* skipped — our own server is not in the tree under test yet (`stm32ota serve` does not run): every test
  for that adapter is skipped with that reason (``conftest.py``).  Nothing is faked.
* an entry in ``deviations`` — the server is known to differ from hawkBit here (gooseBit implements a subset):
  the test runs and is expected to fail (``xfail(strict=True)``), so the difference is recorded and checked
  every run, and a server that starts to conform turns the entry into a failure that asks for its removal.
* :class:`Unsupported` — the server has no such feature at all (gooseBit has no cancel); raised inside a test
  that lists it as a deviation.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tests.peers.goosebit import GooseBit
from tests.peers.swu import build_swu
from tests.relay.ddi_conformance.ddi_client import Reply, call

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 60.0
#: Our demo's signed MCUboot image: what our server accepts as a release.
SIGNED_IMAGE = REPO / "assets" / "firmware" / "demo-1.1.0.signed.bin"


class Unsupported(Exception):
    """The server has no such feature (a recorded deviation, never a skip)."""


@dataclass(frozen=True)
class Device:
    controller_id: str
    token: str
    url: str  # {base}/{tenant}/controller/v1/{controllerId}

    def get(self, path: str = "", **kwargs: Any) -> Reply:
        return call("GET", self.url + path, token=self.token, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> Reply:
        return call("POST", self.url + path, token=self.token, json_body=body, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> Reply:
        return call("PUT", self.url + path, token=self.token, json_body=body, **kwargs)


@dataclass(frozen=True)
class Deployment:
    device: Device
    artifact: bytes  # the bytes the device must download
    filename: str
    version: str


def new_controller_id() -> str:
    # As the gateway names them: stm32-<the MCU's 96-bit unique id, 24 hex digits>.
    return f"stm32-{uuid.uuid4().hex[:24]}"


class ServerUnderTest(ABC):
    name: str
    #: test name (``test_x`` or ``test_x[param]``) -> why this server is expected to differ from hawkBit there
    deviations: Mapping[str, str] = {}

    @property
    @abstractmethod
    def base_url(self) -> str: ...

    @property
    def tenant(self) -> str:
        return "DEFAULT"

    def controller_url(self, controller_id: str) -> str:
        return f"{self.base_url}/{self.tenant}/controller/v1/{controller_id}"

    @abstractmethod
    def register(self) -> Device:
        """A new device known to the server, with its own TargetToken."""

    @abstractmethod
    def deploy(
        self, device: Device, *, forced: bool = True, download_only: bool = False, window: str | None = None
    ) -> Deployment:
        """Assign a new release (one artifact) to ``device``; its poll then offers deploymentBase.

        ``forced`` False is hawkBit's soft assignment; ``download_only`` its download-only action; ``window``
        ``"open"`` or ``"closed"`` a maintenance window that is open now or not (None: no window).
        """

    @abstractmethod
    def cancel(self, deployment: Deployment) -> None:
        """Cancel the deployment's action from the server side (it becomes a DDI cancelAction)."""

    @abstractmethod
    def action_status(self, deployment: Deployment) -> str:
        """hawkBit's ActionStatus name for the deployment's action: RUNNING, FINISHED, ERROR, CANCELED, ..."""

    @abstractmethod
    def attributes(self, device: Device) -> dict[str, str]:
        """The device's attributes as configData left them."""

    @abstractmethod
    def close(self) -> None:
        """Stop what the adapter started."""


# -- gooseBit --------------------------------------------------------------------------------------------------
_GOOSEBIT_STATES = {"Running": "RUNNING", "Finished": "FINISHED", "Error": "ERROR"}
_NO_CANCEL = "gooseBit 0.2.12 has no cancel: no cancelAction resource or link, an assignment can only be replaced"


class GooseBitAdapter(ServerUnderTest):
    """gooseBit 0.2.12 with ``device_auth`` strict (TargetToken per device, devices created by the admin API)."""

    name = "goosebit"
    deviations = {
        # poll
        "test_poll_has_etag_and_honours_if_none_match": "gooseBit's poll sends no ETag and never answers 304",
        "test_poll_etag_changes_when_a_deployment_arrives": "gooseBit's poll sends no ETag",
        "test_deployment_link_carries_change_hash": "gooseBit's deploymentBase link has no ?c= hash",
        "test_finished_action_offers_installed_base": "gooseBit has no installedBase resource or link",
        "test_installed_base_shape": "gooseBit has no installedBase resource (404)",
        # deploymentBase
        "test_artifact_has_sha1_md5_and_sha256": "gooseBit gives only the sha1 hash of an artifact",
        "test_artifact_links_follow_hawkbit": "gooseBit gives only a `download` link (no download-http, md5sum)",
        "test_md5sum_resource": "gooseBit has no .MD5SUM resource",
        "test_action_history_on_request": "gooseBit ignores ?actionHistory= (no actionHistory in deploymentBase)",
        "test_soft_assignment_is_attempt": "gooseBit 0.2.12 has only forced assignments",
        "test_download_only_skips_the_update": "gooseBit 0.2.12 has no download-only actions",
        "test_maintenance_window[open]": "gooseBit 0.2.12 has no maintenance windows",
        "test_maintenance_window[closed]": "gooseBit 0.2.12 has no maintenance windows",
        "test_unknown_action_is_404": "gooseBit answers deploymentBase/{any id} with the current target (id echoed)",
        # download
        "test_download_if_match_with_another_etag_is_412": "gooseBit (Starlette) ignores If-Match: 200",
        "test_download_etag_is_sha1": "gooseBit's download ETag is Starlette's (mtime/size digest), not the SHA-1",
        # feedback
        "test_feedback_to_a_closed_action_is_410": "gooseBit accepts feedback to any action id at any time (200)",
        "test_malformed_feedback_is_400": "gooseBit (FastAPI) answers a malformed body with 422, not 400",
        "test_feedback_that_is_not_json_is_400": "gooseBit (FastAPI) answers a body that is not JSON with 422",
        "test_feedback_maps_to_action_status[scheduled]": "gooseBit only logs `scheduled` (no RUNNING)",
        "test_feedback_maps_to_action_status[resumed]": "gooseBit only logs `resumed` (no RUNNING)",
        "test_feedback_maps_to_action_status[download]": "gooseBit only logs `download` (no DOWNLOAD state)",
        "test_feedback_maps_to_action_status[downloaded]": "gooseBit only logs `downloaded` (no DOWNLOADED state)",
        "test_feedback_maps_to_action_status[canceled]": "gooseBit only logs `canceled` (no CANCELED state)",
        "test_feedback_maps_to_action_status[rejected]": "gooseBit only logs `rejected` (no WARNING state)",
        # cancelAction
        "test_cancel_action_link_and_shape": _NO_CANCEL,
        "test_cancel_feedback_closed_success_cancels": _NO_CANCEL,
        # configData
        "test_config_data_merge_keeps_earlier_keys": "gooseBit keeps only hw_boardname/hw_revision/sw_version",
        "test_config_data_replace_drops_other_keys": "gooseBit ignores configData `mode`",
        "test_config_data_remove_deletes_keys": "gooseBit ignores configData `mode`",
        "test_malformed_config_data_is_400": "gooseBit (FastAPI) answers malformed configData with 422, not 400",
    }

    def __init__(self, python: Path, workdir: Path) -> None:
        self._server = GooseBit(python, workdir, device_auth="strict")
        self._server.start()
        self._versions = itertools.count(1)

    @property
    def base_url(self) -> str:
        return self._server.base_url

    @property
    def tenant(self) -> str:
        return self._server.tenant

    @property
    def server(self) -> GooseBit:
        return self._server

    def register(self) -> Device:
        controller_id = new_controller_id()
        token = self._server.add_device(controller_id)
        return Device(controller_id, token, self.controller_url(controller_id))

    def deploy(
        self, device: Device, *, forced: bool = True, download_only: bool = False, window: str | None = None
    ) -> Deployment:
        if not forced or download_only or window is not None:
            raise Unsupported("gooseBit 0.2.12 has only forced assignments: no soft, download-only or window")
        # gooseBit offers nothing to a device that has not sent configData (and matches .swu compatibility on
        # hw_boardname/hw_revision), so the adapter sends it first, over DDI, as a real client would.
        reply = device.put(
            "/configData",
            {"mode": "merge", "data": {"hw_boardname": "stm32-gw", "hw_revision": "1.0", "sw_version": "1.0.0"}},
        )
        if reply.status != 200:
            raise AssertionError(f"gooseBit refused configData: {reply.status} {reply.body[:200]!r}")
        version = f"1.{next(self._versions)}.{uuid.uuid4().int % 1000}"
        payload = os.urandom(3000) + b"firmware " + version.encode()
        filename = f"stm32-gw-{version}.swu"
        bundle = build_swu(version, {"firmware.bin": payload})
        software_id = self._server.upload_software(bundle, filename)
        self._server.assign(device.controller_id, software_id)
        return Deployment(device, bundle, filename, version)

    def cancel(self, deployment: Deployment) -> None:
        raise Unsupported(_NO_CANCEL)

    def action_status(self, deployment: Deployment) -> str:
        state = self._server.device(deployment.device.controller_id)["last_state"]
        return _GOOSEBIT_STATES.get(state, f"(gooseBit device state {state})")

    def attributes(self, device: Device) -> dict[str, str]:
        shown = self._server.device(device.controller_id)
        hardware = shown.get("hardware") or {}
        attributes = {"hw_boardname": hardware.get("model"), "hw_revision": hardware.get("revision")}
        if shown.get("sw_version") is not None:
            attributes["sw_version"] = shown["sw_version"]
        return {key: str(value) for key, value in attributes.items() if value is not None}

    def close(self) -> None:
        self._server.stop()


# -- ours ------------------------------------------------------------------------------------------------------
#: The dev Ed25519 key the demo images are signed with (assets/keys/README.md): the server must trust it.
DEV_PUBLIC_KEY = REPO / "assets" / "keys" / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pub.pem"
#: Overrides how our server is started (a shell-quoted command; ``--data``/``--listen``/``--config`` follow).
SERVE_COMMAND_ENV = "STM32OTA_SERVE_COMMAND"


def serve_command() -> list[str]:
    configured = os.environ.get(SERVE_COMMAND_ENV)
    return shlex.split(configured) if configured else [sys.executable, "-m", "protocol", "serve"]


def stm32ota_serve_missing(tree: Path) -> str | None:
    """Why `stm32ota serve` cannot run from ``tree``, or None when it can."""
    done = subprocess.run(
        [*serve_command(), "--help"],
        cwd=tree,  # `python -m` looks in the working folder first
        env=dict(os.environ, PYTHONPATH=str(tree)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()] or ["(no output)"]
        return f"`stm32ota serve` is not in {tree} yet (issue #10): {lines[-1].strip()[:160]}"
    return None


class PostgresDatabase:
    """A database of its own on the PostgreSQL server ``STM32OTA_TEST_PG_DSN`` names, dropped on close."""

    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        self.name = f"stm32ota_ddi_{uuid.uuid4().hex[:12]}"
        self._admin_dsn = dsn
        self.url = urlunsplit(parts._replace(path=f"/{self.name}"))
        self._psql(f'CREATE DATABASE "{self.name}"')

    def _psql(self, sql: str) -> None:
        done = subprocess.run(
            ["psql", self._admin_dsn, "-v", "ON_ERROR_STOP=1", "-qc", sql],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {done.stderr.strip()[-400:]}")

    def close(self) -> None:
        self._psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Stm32OtaAdapter(ServerUnderTest):
    """Our server (issue #10): ``stm32ota serve --config C --data DIR --listen 127.0.0.1:0``, SQLite in DIR.

    Devices come from ``POST /api/v1/devices`` (chip STM32F407, the demo images' hardware tag), the release is
    the demo's signed 1.1.0 image (``POST /api/v1/releases``, once), a deployment is ``POST /api/v1/actions``
    (forced), a cancel ``POST /api/v1/actions/{id}/cancel``; states and attributes come from
    ``GET /api/v1/devices/{controllerId}``.
    """

    name = "stm32ota"
    deviations: Mapping[str, str] = {}

    def __init__(self, tree: Path, workdir: Path, *, database: str | None = None) -> None:
        """``database``: a PostgreSQL URL (its own, empty database) instead of SQLite in the data folder."""
        self._data = workdir / "data"
        self._data.mkdir(parents=True, exist_ok=True)
        config = workdir / "server.toml"
        lines = [f"trusted_keys = [{json.dumps(str(DEV_PUBLIC_KEY))}]", "poll_interval = 300"]
        if database is not None:
            lines.append(f"database = {json.dumps(database)}")
        config.write_text("\n".join(lines) + "\n")
        self._log = (workdir / "serve.log").open("wb")
        self._process = subprocess.Popen(
            [*serve_command(), "--config", str(config), "--data", str(self._data), "--listen", "127.0.0.1:0"],
            cwd=workdir,  # not the checkout: `python -m` looks in the working folder first
            env=dict(os.environ, PYTHONPATH=str(tree)),
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        assert self._process.stdout is not None
        first = self._process.stdout.readline().decode(errors="replace").strip()
        if not first.startswith("http"):
            self.close()
            log = (workdir / "serve.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"`stm32ota serve` printed {first!r} instead of its base URL: {log}")
        self._base_url = first.rstrip("/")
        token_file = self._data / "admin-token"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not token_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._admin_token = token_file.read_text().strip()
        self._release: dict[str, Any] | None = None
        self._actions: dict[str, int] = {}

    @property
    def base_url(self) -> str:
        return self._base_url

    def admin(self, method: str, path: str, body: Any = None, *, data: bytes | None = None) -> Reply:
        headers = {"Authorization": f"Bearer {self._admin_token}"}
        if data is not None:
            headers["Content-Type"] = "application/octet-stream"
        return call(method, self._base_url + path, json_body=body, data=data, headers=headers)

    def _admin_ok(self, method: str, path: str, body: Any = None, *, data: bytes | None = None) -> Any:
        reply = self.admin(method, path, body, data=data)
        if not 200 <= reply.status < 300:
            raise AssertionError(f"{method} {path} answered {reply.status}: {reply.body[:400]!r}")
        return reply.json()

    def register(self) -> Device:
        controller_id = new_controller_id()
        document = self._admin_ok("POST", "/api/v1/devices", {"controller_id": controller_id, "chip": "STM32F407"})
        return Device(controller_id, document["token"], self.controller_url(controller_id))

    def _the_release(self) -> dict[str, Any]:
        if self._release is None:
            self._release = dict(
                self._admin_ok("POST", f"/api/v1/releases?filename={SIGNED_IMAGE.name}", data=SIGNED_IMAGE.read_bytes())
            )
        return self._release

    def deploy(
        self, device: Device, *, forced: bool = True, download_only: bool = False, window: str | None = None
    ) -> Deployment:
        release = self._the_release()
        body: dict[str, Any] = {
            "controller_id": device.controller_id,
            "release": str(release["id"]),
            "forced": forced,
            "download_only": download_only,
        }
        if window is not None:
            # A daily window (UTC): open now = started an hour ago for two hours; closed = a minute, in two hours.
            now = dt.datetime.now(dt.UTC)
            start = now + (dt.timedelta(hours=-1) if window == "open" else dt.timedelta(hours=2))
            body["maintenance"] = {"start": start.strftime("%H:%M"), "duration": 7200 if window == "open" else 60}
        action = self._admin_ok("POST", "/api/v1/actions", body)
        self._actions[device.controller_id] = int(action["id"])
        return Deployment(device, SIGNED_IMAGE.read_bytes(), str(release["filename"]), str(release["version"]))

    def cancel(self, deployment: Deployment) -> None:
        action_id = self._actions[deployment.device.controller_id]
        self._admin_ok("POST", f"/api/v1/actions/{action_id}/cancel", {})

    def action_status(self, deployment: Deployment) -> str:
        action_id = self._actions[deployment.device.controller_id]
        shown = self._admin_ok("GET", f"/api/v1/devices/{deployment.device.controller_id}")
        for action in shown.get("actions", []):
            if action["id"] == action_id:
                return str(action["status"]).upper()
        raise AssertionError(f"action {action_id} is not in the device's actions: {shown}")

    def attributes(self, device: Device) -> dict[str, str]:
        shown = self._admin_ok("GET", f"/api/v1/devices/{device.controller_id}")
        return {str(k): str(v) for k, v in (shown.get("attributes") or {}).items()}

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=10)
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait(timeout=10)
        self._log.close()


__all__ = [
    "SIGNED_IMAGE",
    "Deployment",
    "Device",
    "GooseBitAdapter",
    "PostgresDatabase",
    "ServerUnderTest",
    "Stm32OtaAdapter",
    "Unsupported",
    "new_controller_id",
    "stm32ota_serve_missing",
]
