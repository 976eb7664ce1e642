"""Subcommands of the OTA server: ``serve`` and the admin commands ``release``, ``rollout``, ``device``,
``gateway-token`` (handlers in :mod:`relay.server.commands`, imported only when one runs)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["COMMANDS", "register"]

COMMANDS = ("serve", "release", "rollout", "device", "gateway-token")
_HANDLERS = "relay.server.commands"


def _client_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("server")
    group.add_argument("--server", help="base URL of the server (default: $STM32OTA_SERVER, or DATA/server-url)")
    group.add_argument("--token", help="admin token (default: $STM32OTA_TOKEN, or DATA/admin-token)")
    group.add_argument("--data", help="a local server's data folder, to find its URL and token ($STM32OTA_DATA)")
    group.add_argument("--tenant", default=None, help="tenant (default: the server's first)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _sub(parent: argparse._SubParsersAction[Any], name: str, help_text: str, handler: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = parent.add_parser(name, help=help_text)
    _client_arguments(p)
    p.set_defaults(handler=f"{_HANDLERS}:{handler}")
    return p


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "serve",
        help="run the OTA server (hawkBit DDI for devices and gateways, the admin API)",
        description="Prints the base URL as its first line.  On first start it writes an admin token to "
        "DATA/admin-token (mode 0600).  Flags override the --config file.",
    )
    p.add_argument("--data", help="data folder: SQLite database, artifacts, admin token")
    p.add_argument("--config", help="TOML config file (see docs/server.md)")
    p.add_argument("--listen", help="HOST:PORT to listen on (port 0 picks a free one; default 127.0.0.1:8080)")
    p.add_argument("--database", help="database URL (default: SQLite in the data folder; postgresql://...)")
    p.add_argument("--public-url", help="base URL the DDI links use (default: from each request's Host)")
    p.add_argument("--trusted-key", action="append", help="public key (or folder of *.pem) releases must be signed by")
    p.add_argument("--poll-interval", type=int, help="seconds devices sleep between polls (default 300)")
    p.add_argument("--max-release-size", type=int, help="largest image accepted, in bytes")
    p.add_argument("--tenant", action="append", dest="tenants", help="tenant name (repeat; default DEFAULT)")
    p.add_argument("--no-access-log", action="store_true", help="do not write the JSON access log to stderr")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_serve")

    release = sub.add_parser("release", help="signed releases: add, list, show, download, retire").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    p = _sub(release, "add", "upload a signed image", "cmd_release_add")
    p.add_argument("image", help="MCUboot-signed image (stm32ota sign / imgtool sign)")
    p.add_argument("--name", default="", help="display name")
    p.add_argument("--filename", default="", help="artifact file name devices see")
    p.add_argument("--description", default="")
    _sub(release, "list", "list releases", "cmd_release_list")
    p = _sub(release, "show", "one release", "cmd_release_show")
    p.add_argument("release", help="version or id")
    p = _sub(release, "download", "save a release's image", "cmd_release_download")
    p.add_argument("release", help="version or id")
    p.add_argument("-o", "--output", required=True, help="file to write")
    p = _sub(release, "retire", "never offer a release again", "cmd_release_retire")
    p.add_argument("release", help="version or id")

    rollout = sub.add_parser("rollout", help="staged rollouts: create, status, pause, resume, cancel").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    p = _sub(rollout, "create", "roll a release out in groups", "cmd_rollout_create")
    p.add_argument("release", help="version or id")
    p.add_argument("--name", default="")
    p.add_argument("--chip", help="only devices with this chip (name or DEV_ID)")
    p.add_argument("--board", type=int, help="only devices with this board id")
    p.add_argument("--tag", action="append", dest="tags", help="only devices with this tag (repeat: all of them)")
    p.add_argument("--device", action="append", dest="devices", help="only these controllerIds (repeat)")
    p.add_argument("--canary", type=int, default=1, help="devices in the first group (default 1)")
    p.add_argument("--percentages", default="100", help="cumulative group sizes after the canary, e.g. 25,50,100")
    p.add_argument("--success-threshold", type=int, default=100, help="percent updated before the next group")
    p.add_argument("--error-count", type=int, help="pause when this many devices of a group fail")
    p.add_argument("--error-percent", type=int, help="pause when this percentage of a group fails")
    p.add_argument("--forced", action="store_true", help="forced update (default: soft)")
    p.add_argument("--download-only", action="store_true", help="download, do not install")
    p.add_argument("--window", help="daily maintenance window HH:MM+SECONDS (UTC), e.g. 02:00+7200")
    for name, help_text in (
        ("status", "groups and devices of a rollout (all rollouts without ID)"),
        ("pause", "stop starting groups"),
        ("resume", "continue a paused rollout"),
        ("cancel", "stop it; devices get cancelAction"),
    ):
        p = _sub(rollout, name, help_text, f"cmd_rollout_{name}")
        p.add_argument("rollout", type=int, nargs="?" if name == "status" else None, help="rollout id")

    device = sub.add_parser("device", help="devices: list, show, add, accept, token").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    p = _sub(device, "list", "list devices", "cmd_device_list")
    p.add_argument("--state", choices=("active", "pending"))
    p = _sub(device, "show", "one device and its actions", "cmd_device_show")
    p.add_argument("controller_id")
    p = _sub(device, "add", "pre-register a device; prints its TargetToken", "cmd_device_add")
    p.add_argument("controller_id", help="e.g. stm32-<96-bit unique id>")
    p.add_argument("--device-token", help="use this token instead of a random one")
    p.add_argument("--chip", help="chip name or DEV_ID")
    p.add_argument("--board", type=int)
    p.add_argument("--tag", action="append", dest="tags")
    p = _sub(device, "accept", "accept a device a gateway registered", "cmd_device_accept")
    p.add_argument("controller_id")
    p.add_argument("--tag", action="append", dest="tags", help="tag it at the same time (repeat)")
    p = _sub(device, "token", "give a device a new TargetToken (the old one stops working)", "cmd_device_token")
    p.add_argument("controller_id")

    gateway = sub.add_parser("gateway-token", help="gateway tokens: create, list, revoke").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    p = _sub(gateway, "create", "a GatewayToken for a gateway (created if new); prints it", "cmd_gateway_create")
    p.add_argument("gateway", help="gateway name")
    p.add_argument("--label", default="")
    p.add_argument("--no-register", action="store_true", help="the token may not self-register new devices")
    p.add_argument("--device", action="append", dest="devices", help="bind an existing device to the gateway")
    _sub(gateway, "list", "list gateway tokens", "cmd_gateway_list")
    p = _sub(gateway, "revoke", "revoke a gateway token", "cmd_gateway_revoke")
    p.add_argument("id", type=int)
