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

Unknown keys and wrong types are errors (:class:`~relay.gateway.errors.ConfigError`), never silently ignored.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["DEFAULT_LISTEN", "GatewayConfig", "PortConfig", "load_config"]

DEFAULT_LISTEN = "127.0.0.1:9110"
DEFAULT_BAUD = 115200


@dataclass(frozen=True, kw_only=True)
class PortConfig:
    url: str
    baud: int = DEFAULT_BAUD
    fast_baud: int | None = None
    hw_boardname: str | None = None  # overrides the gateway-wide value for this port
    hw_revision: str | None = None


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

    def __post_init__(self) -> None:
        if not self.server.startswith(("http://", "https://")):
            raise ConfigError(f"server must be an http:// or https:// URL, not {self.server!r}")
        if self.logs not in ("auto", "endpoint", "details"):
            raise ConfigError(f"logs must be auto, endpoint or details, not {self.logs!r}")
        if self.relay_attempts < 1:
            raise ConfigError("relay_attempts must be at least 1")

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
}
_PORT_KEYS: dict[str, type | tuple[type, ...]] = {
    "url": str,
    "baud": int,
    "fast_baud": int,
    "hw_boardname": str,
    "hw_revision": str,
}


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
            raise ConfigError(f"{where}: unknown key {key!r}")
    return out


def _port(table: Any, where: str) -> PortConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table with url = ...")
    unknown = set(table) - set(_PORT_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    if "url" not in table:
        raise ConfigError(f"{where}: url is missing")
    return PortConfig(**{k: _typed(where, k, v, _PORT_KEYS[k]) for k, v in table.items()})


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
        raise ConfigError("no serial ports", hint="give --port URL (repeatable) or [[port]] tables in the config")
    baud = values.get("baud", DEFAULT_BAUD)
    if "baud" in values:
        # ports that name no rate of their own take the gateway-wide one
        values["ports"] = tuple(p if p.baud != DEFAULT_BAUD else replace(p, baud=baud) for p in values["ports"])
    try:
        return GatewayConfig(**values)
    except TypeError as err:
        raise ConfigError(str(err)) from err
