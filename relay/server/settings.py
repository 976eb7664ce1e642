"""The server's settings: defaults, a TOML file (``--config server.toml``), then command-line flags.

Example ``server.toml``::

    data = "/var/lib/stm32ota"
    listen = "0.0.0.0:8080"
    database = "postgresql://stm32ota:secret@db/stm32ota"   # default: SQLite in the data folder
    public_url = "https://ota.example.com"                    # base of the links in DDI answers
    tenants = ["DEFAULT"]
    poll_interval = 300                                       # seconds, DDI config.polling.sleep
    trusted_keys = ["/etc/stm32ota/product.pub.pem"]
    max_release_size = 4194304
    download_base_url = "https://cdn.example.com/artifacts"   # optional: redirect artifact downloads
    cache_ttl = 60.0
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import startup
from .errors import ConfigError

__all__ = ["DEFAULT_TENANT", "Settings", "load_settings", "parse_listen"]

DEFAULT_TENANT = "DEFAULT"
DEFAULT_POLL_INTERVAL = 300  # seconds: hawkBit's default 5 minutes
DEFAULT_MAX_RELEASE_SIZE = 4 * 1024 * 1024  # bytes: well above any STM32's flash
DEFAULT_CACHE_TTL = 60.0  # seconds a cached credential lives at most (changes are seen within ~1 s anyway)
MAX_LONG_POLL = 300  # seconds a poll may hold with ?wait=
_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything :func:`relay.server.app.create_app` needs."""

    data: Path
    database: str | None = None
    listen: str = "127.0.0.1:8080"
    public_url: str | None = None
    tenants: tuple[str, ...] = (DEFAULT_TENANT,)
    poll_interval: int = DEFAULT_POLL_INTERVAL
    trusted_keys: tuple[Path, ...] = ()
    max_release_size: int = DEFAULT_MAX_RELEASE_SIZE
    download_base_url: str | None = None
    cache_ttl: float = DEFAULT_CACHE_TTL
    long_poll_max: int = MAX_LONG_POLL
    rollout_tick: float = 1.0
    """Seconds between the background checks that advance rollouts (feedback also advances them at once)."""

    def __post_init__(self) -> None:
        if not self.tenants:
            raise ConfigError("tenants: at least one tenant is needed")
        for tenant in self.tenants:
            if not _TENANT_RE.match(tenant):
                raise ConfigError(f"tenants: {tenant!r} is not a valid tenant name (letters, digits, - and _)")
        if not 1 <= self.poll_interval < 24 * 3600:
            raise ConfigError("poll_interval: give seconds between 1 and 86399")
        if self.max_release_size <= 0:
            raise ConfigError("max_release_size: must be positive")
        if self.cache_ttl < 0:
            raise ConfigError("cache_ttl: must not be negative")
        parse_listen(self.listen)

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{self.data / 'stm32ota.db'}"

    @property
    def artifacts_dir(self) -> Path:
        return self.data / "artifacts"

    @property
    def admin_token_file(self) -> Path:
        return self.data / "admin-token"


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8080`` for IPv6) as a pair; port 0 picks a free one."""
    return startup.parse_listen(listen, error=ConfigError)


_FIELDS = {f.name for f in dataclasses.fields(Settings)}


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the TOML file ``config`` (if given), with non-``None`` ``overrides`` on top."""
    values: dict[str, Any] = {}
    if config is not None:
        try:
            values = tomllib.loads(config.read_text(encoding="utf-8"))
        except OSError as err:
            raise ConfigError(f"cannot read the config file {config}: {err.strerror}") from err
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{config}: not valid TOML: {err}") from err
        unknown = sorted(set(values) - _FIELDS)
        if unknown:
            raise ConfigError(f"{config}: unknown setting(s) {', '.join(unknown)}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "data" not in values:
        raise ConfigError('no data folder: give --data DIR or data = "DIR" in the config file')
    try:
        values["data"] = Path(values["data"]).expanduser()
        if "tenants" in values:
            values["tenants"] = tuple(str(t) for t in values["tenants"])
        if "trusted_keys" in values:
            values["trusted_keys"] = tuple(Path(p).expanduser() for p in values["trusted_keys"])
        for name, kind in (("poll_interval", int), ("max_release_size", int), ("cache_ttl", float)):
            if (name in values and not isinstance(values[name], int | float)) or isinstance(values.get(name), bool):
                raise ConfigError(f"{name}: expected a number, got {values[name]!r}")
            if name in values:
                values[name] = kind(values[name])
        for name in ("listen", "database", "public_url", "download_base_url"):
            if name in values and not isinstance(values[name], str):
                raise ConfigError(f"{name}: expected a string, got {values[name]!r}")
        return Settings(**values)
    except TypeError as err:
        raise ConfigError(f"invalid settings: {err}") from err
