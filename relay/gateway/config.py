"""The gateway's configuration: a TOML file (``stm32ota gateway --config gateway.toml``), flags override it.

::

    server = "https://ota.example.com"
    tenant = "DEFAULT"
    gateway_token = "..."                  # or, per device:  [target_tokens]  "stm32-<uid>" = "..."
    baud = 115200
    trusted_keys = ["/etc/stm32ota/product.pub.pem"]
    state_dir = "/var/lib/stm32ota-gateway"  # artifact cache and journal
    listen = "127.0.0.1:9110"              # /healthz, /metrics, /status
    hw_boardname = "stm32-gw"              # gooseBit matches bundles on these two
    hw_revision = "1.0"

    [[port]]
    url = "/dev/ttyUSB0"
    [[port]]
    url = "/dev/ttyUSB1"
    baud = 921600
    [[port]]                               # every board with this USB VID:PID, plugged in now or later
    usb = "0483:5740"
    serial_number = "3376..."              # optional: only that one
    [[port]]                               # every path that matches, now or later
    glob = "/dev/serial/by-id/usb-STMicro*"

Unknown keys and wrong types are errors (:class:`~relay.gateway.errors.ConfigError`), never silently ignored.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["DEFAULT_LISTEN", "GatewayConfig", "PortConfig", "load_config"]

_USB = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$")

DEFAULT_LISTEN = "127.0.0.1:9110"
DEFAULT_BAUD = 115200


@dataclass(frozen=True, kw_only=True)
class PortConfig:
    """One port (``url``), or a rule that finds ports as they come and go (``usb`` VID:PID, ``glob``)."""

    url: str = ""
    baud: int = DEFAULT_BAUD
    fast_baud: int | None = None
    hw_boardname: str | None = None  # overrides the gateway-wide value for this port
    hw_revision: str | None = None
    usb: str | None = None  # "0483:5740": every USB serial port with this vendor and product id
    serial_number: str | None = None  # with usb: only the adapter with this USB serial number
    glob: str | None = None  # "/dev/serial/by-id/usb-STMicro*": every path that matches

    def __post_init__(self) -> None:
        given = [k for k in ("url", "usb", "glob") if getattr(self, k)]
        if len(given) != 1:
            what = " and ".join(given) if given else "none of them"
            raise ConfigError(f"a port needs exactly one of url, usb or glob, not {what}")
        if self.usb is not None and _USB.match(self.usb) is None:
            raise ConfigError(f'usb must be VID:PID in hex ("0483:5740"), not {self.usb!r}')
        if self.serial_number is not None and self.usb is None:
            raise ConfigError('serial_number narrows a usb = "VID:PID" port; give usb as well')

    @property
    def discovered(self) -> bool:
        """A rule (usb, glob) rather than one fixed port."""
        return not self.url

    @property
    def vid_pid(self) -> tuple[int, int] | None:
        if self.usb is None:
            return None
        vid, pid = self.usb.split(":")
        return int(vid, 16), int(pid, 16)

    @property
    def label(self) -> str:
        if self.url:
            return self.url
        if self.usb:
            return f"usb {self.usb}" + (f" serial {self.serial_number}" if self.serial_number else "")
        return f"glob {self.glob}"


@dataclass(frozen=True, kw_only=True)
class GatewayConfig:
    server: str
    tenant: str = "DEFAULT"
    gateway_token: str | None = None
    target_tokens: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[PortConfig, ...] = ()
    baud: int = DEFAULT_BAUD
    trusted_keys: tuple[Path, ...] = ()
    state_dir: Path = Path("stm32ota-gateway")
    listen: str | None = DEFAULT_LISTEN
    hw_boardname: str | None = None  # default: "stm32-<chip id>"
    hw_revision: str | None = None  # default: the board id
    poll_jitter: float = 0.1  # +-10 % of the server's sleep
    max_poll_interval: float = 3600.0
    request_timeout: float = 30.0  # every request, the download's per-read silence included
    progress_interval: float = 2.0  # at most one progress feedback per port this often
    relay_attempts: int = 3  # a failed relay (power cut, cable) is resumed this often before it is reported
    logs: str = "auto"  # "auto": the server's log endpoint if it has one, else feedback details
    events: str = "auto"  # "auto": our server's event stream if it offers one (instant start), "off": poll only
    discovery_interval: float = 2.0  # seconds between scans of the port list for usb/glob ports

    def __post_init__(self) -> None:
        if not self.server.startswith(("http://", "https://")):
            raise ConfigError(f"server must be an http:// or https:// URL, not {self.server!r}")
        if self.logs not in ("auto", "endpoint", "details"):
            raise ConfigError(f"logs must be auto, endpoint or details, not {self.logs!r}")
        if self.relay_attempts < 1:
            raise ConfigError("relay_attempts must be at least 1")
        if self.events not in ("auto", "off"):
            raise ConfigError(f"events must be auto or off, not {self.events!r}")
        if self.discovery_interval <= 0:
            raise ConfigError("discovery_interval must be a positive number of seconds")
        for name in ("request_timeout", "progress_interval", "max_poll_interval"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be a positive number of seconds")

    @property
    def journal_path(self) -> Path:
        return self.state_dir / "journal.sqlite3"

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    def token_for(self, controller_id: str) -> str | None:
        """The ``Authorization`` header value for ``controller_id`` (a target token wins over the gateway's)."""
        token = self.target_tokens.get(controller_id)
        if token is not None:
            return f"TargetToken {token}"
        if self.gateway_token is not None:
            return f"GatewayToken {self.gateway_token}"
        return None


_SIMPLE: dict[str, type | tuple[type, ...]] = {
    "server": str,
    "tenant": str,
    "gateway_token": str,
    "baud": int,
    "listen": str,
    "hw_boardname": str,
    "hw_revision": str,
    "poll_jitter": (int, float),
    "max_poll_interval": (int, float),
    "request_timeout": (int, float),
    "progress_interval": (int, float),
    "relay_attempts": int,
    "logs": str,
    "events": str,
    "discovery_interval": (int, float),
}
_PORT_KEYS: dict[str, type | tuple[type, ...]] = {
    "url": str,
    "baud": int,
    "fast_baud": int,
    "hw_boardname": str,
    "hw_revision": str,
    "usb": str,
    "serial_number": str,
    "glob": str,
}
_TOP_KEYS = (*_SIMPLE, "trusted_keys", "state_dir", "target_tokens", "port")


def _unknown(where: str, key: str, known: tuple[str, ...] | list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    return ConfigError(f"{where}: unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))


def _typed(where: str, key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{where}: {key} must be {names}, not {value!r}")
    return value


def _from_table(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key in _SIMPLE:
            out[key] = _typed(where, key, value, _SIMPLE[key])
        elif key == "trusted_keys":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: trusted_keys must be a list of file names")
            out[key] = tuple(Path(v) for v in value)
        elif key == "state_dir":
            out[key] = Path(_typed(where, key, value, str))
        elif key == "target_tokens":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ConfigError(f"{where}: target_tokens must map controllerIds to token strings")
            out[key] = dict(value)
        elif key == "port":
            if not isinstance(value, list):
                raise ConfigError(f"{where}: write ports as [[port]] tables")
            out["ports"] = tuple(_port(p, f"{where}: port {i + 1}") for i, p in enumerate(value))
        else:
            raise _unknown(where, key, _TOP_KEYS)
    return out


def _port(table: Any, where: str) -> PortConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table with url = ...")
    unknown = set(table) - set(_PORT_KEYS)
    if unknown:
        raise _unknown(where, sorted(unknown)[0], list(_PORT_KEYS))
    if not {"url", "usb", "glob"} & set(table):
        raise ConfigError(f'{where}: url is missing (or usb = "VID:PID", or glob = "/dev/serial/by-id/...")')
    try:
        return PortConfig(**{k: _typed(where, k, v, _PORT_KEYS[k]) for k, v in table.items()})
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def load_config(path: Path | str | None = None, **overrides: Any) -> GatewayConfig:
    """The configuration from ``path`` (TOML) with ``overrides`` (flags; None values are ignored) on top.
    ``overrides["ports"]`` may be a list of URLs."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"cannot read {path}: {err.strerror or err}") from err
        try:
            table = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path} is not valid TOML: {err}") from err
        values = _from_table(table, str(path))
    for key, given in overrides.items():
        if given is None or given in ((), []):
            continue
        value = given
        if key == "ports":
            value = tuple(p if isinstance(p, PortConfig) else PortConfig(url=str(p)) for p in given)
        elif key == "trusted_keys":
            value = tuple(Path(v) for v in given)
        elif key == "state_dir":
            value = Path(given)
        values[key] = value
    if "server" not in values:
        raise ConfigError("no server URL", hint='give --server URL or server = "..." in the config file')
    if not values.get("ports"):
        raise ConfigError(
            "no serial ports",
            hint="give --port URL or --usb VID:PID (repeatable), or [[port]] tables in the config",
        )
    baud = values.get("baud", DEFAULT_BAUD)
    if "baud" in values:
        # ports that name no rate of their own take the gateway-wide one
        values["ports"] = tuple(p if p.baud != DEFAULT_BAUD else replace(p, baud=baud) for p in values["ports"])
    try:
        return GatewayConfig(**values)
    except TypeError as err:
        raise ConfigError(str(err)) from err
