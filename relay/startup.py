"""What the OTA server (:mod:`relay.server`) and the field gateway (:mod:`relay.gateway`) both do when they
start: load the trusted signing keys, and put an aiohttp application on a ``host:port``.

Each caller names its own :class:`~protocol.errors.Stm32OtaError` subclass (``error=``), so a mistake is
reported in that part's error tree (the server's ``ConfigError`` or the gateway's) with the same sentence.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from protocol.errors import Stm32OtaError
from protocol.image import ImageError, KeyFileError, PublicKey, load_public_key

__all__ = ["bound_url", "load_trusted_keys", "parse_listen", "start_site"]

ErrorType = Callable[..., Stm32OtaError]


def load_trusted_keys(paths: tuple[Path, ...] | list[Path], *, error: ErrorType) -> list[PublicKey]:
    """Public keys from files, or from every ``*.pem`` in a folder."""
    keys: list[PublicKey] = []
    for path in paths:
        files = sorted(path.glob("*.pem")) if path.is_dir() else [path]
        for file in files:
            try:
                keys.append(load_public_key(file.read_bytes()))
            except OSError as err:
                raise error(f"trusted_keys: cannot read {file}: {err.strerror}") from err
            except KeyFileError as err:  # its message may speak of a private key: we want a public one
                raise error(
                    f"trusted_keys: {file} is not a public key (PEM or DER)",
                    hint="give the .pub.pem that `stm32ota keygen` wrote beside the signing key",
                ) from err
            except ImageError as err:
                raise error(f"trusted_keys: {file}: {err}") from err
    return keys


def parse_listen(listen: str, *, error: ErrorType, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """``host:port`` (``[::1]:8080`` for IPv6) as a pair; port 0 picks a free one."""
    host, sep, port = listen.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit() and len(port) <= 5) or not 0 <= int(port) <= 65535:
        raise error(f"listen: {listen!r} is not host:port")
    return host.strip("[]") or default_host, int(port)


def bound_url(runner: web.AppRunner) -> str:
    """``http://host:port`` of the first address ``runner`` listens on (the port chosen for port 0)."""
    bound = runner.addresses[0]
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    return f"http://{shown}:{bound[1]}"


async def start_site(
    app: web.Application, listen: str, *, error: ErrorType, default_host: str = "0.0.0.0", **runner: Any
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``listen``; the runner (``await runner.cleanup()`` stops it) and the URL it is on.
    ``runner`` keyword arguments go to :class:`aiohttp.web.AppRunner`."""
    host, port = parse_listen(listen, error=error, default_host=default_host)
    app_runner = web.AppRunner(app, **runner)
    try:
        await app_runner.setup()
    except OSError as err:
        raise error(f"cannot start: {err}") from err
    site = web.TCPSite(app_runner, host, port)
    try:
        await site.start()
    except OSError as err:
        await app_runner.cleanup()
        raise error(f"cannot listen on {listen}: {err.strerror or err}") from err
    return app_runner, bound_url(app_runner)
