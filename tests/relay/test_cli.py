"""``stm32ota serve`` as a process and the admin commands against it; the TOML config."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.cli import main
from relay.server.errors import ConfigError
from relay.server.settings import load_settings
from tests.relay.conftest import BAD, IMAGE_110, KEYS, ROOT

STARTUP_TIMEOUT = 60


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A ``stm32ota serve`` process on SQLite; yields (base URL, data folder, its first stdout lines)."""
    data = tmp_path / "data"
    config = tmp_path / "server.toml"
    config.write_text(f'listen = "127.0.0.1:9"\ntrusted_keys = ["{KEYS}"]\npoll_interval = 60\n')
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "protocol",
            "serve",
            "--config",
            str(config),
            "--data",
            str(data),
            "--listen",
            "127.0.0.1:0",
            "--no-access-log",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        second = proc.stdout.readline().strip()
        assert first.startswith("http://127.0.0.1:"), (first, proc.stderr.read() if proc.stderr else "")
        yield first, data, [first, second]
    finally:
        proc.terminate()
        proc.wait(30)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_serve_prints_url_and_creates_an_admin_token(served: tuple[str, Path, list[str]]) -> None:
    url, data, lines = served
    token_file = data / "admin-token"
    assert lines[1] == f"admin token created: {token_file} (mode 0600; use it with --token or --data)"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert (data / "server-url").read_text().strip() == url


def test_admin_commands(
    served: tuple[str, Path, list[str]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, data, _ = served
    monkeypatch.setenv("STM32OTA_SERVER", url)
    monkeypatch.setenv("STM32OTA_TOKEN", (data / "admin-token").read_text().strip())
    code, out, _ = _run(capsys, "device", "add", "stm32-0011", "--chip", "stm32f407", "--json")
    assert code == 0
    device = json.loads(out)
    assert device["controller_id"] == "stm32-0011" and device["chip_id"] == 0x413 and device["token"]
    code, out, _ = _run(capsys, "release", "add", str(IMAGE_110), "--name", "demo")
    assert code == 0 and out.startswith("release 1.1.0 added")
    code, out, err = _run(capsys, "release", "add", str(BAD / "wrong-key.bin"))
    assert code == 1 and "422" in err and "trusted" in err
    code, out, _ = _run(capsys, "release", "list")
    assert "1.1.0" in out and "0x413" in out
    saved = data / "saved.bin"
    code, out, _ = _run(capsys, "release", "download", "1.1.0", "-o", str(saved))
    assert code == 0 and saved.read_bytes() == IMAGE_110.read_bytes() and "SHA-256 checked" in out
    code, _, err = _run(capsys, "release", "download", "9.9.9", "-o", str(saved))
    assert code == 1 and "404" in err
    code, out, _ = _run(capsys, "release", "show", "1.1.0", "--json")
    assert json.loads(out)["security_counter"] == 2
    code, out, _ = _run(
        capsys, "rollout", "create", "1.1.0", "--chip", "0x413", "--canary", "1", "--window", "00:00+86400", "--json"
    )
    rollout = json.loads(out)
    assert code == 0 and rollout["maintenance"] == {"start": "00:00", "duration": 86400}
    code, out, _ = _run(capsys, "rollout", "status", str(rollout["id"]))
    assert "canary" in out and "stm32-0011" in out
    code, out, _ = _run(capsys, "rollout", "pause", str(rollout["id"]))
    assert "paused" in out
    code, out, _ = _run(capsys, "rollout", "resume", str(rollout["id"]))
    code, out, _ = _run(capsys, "rollout", "cancel", str(rollout["id"]))
    assert "canceled" in out
    code, out, _ = _run(capsys, "rollout", "status")
    assert "canceled" in out
    code, out, _ = _run(capsys, "gateway-token", "create", "gw-1", "--label", "lab", "--json")
    gw = json.loads(out)
    assert gw["token"] and gw["gateway"] == "gw-1"
    code, out, _ = _run(capsys, "gateway-token", "list")
    assert "gw-1" in out and "active" in out
    code, out, _ = _run(capsys, "gateway-token", "revoke", str(gw["id"]))
    assert "revoked" in out
    code, out, _ = _run(capsys, "device", "token", "stm32-0011")
    assert out.startswith("TargetToken ")
    code, out, _ = _run(capsys, "device", "list")
    assert "stm32-0011" in out
    code, out, _ = _run(capsys, "device", "show", "stm32-0011")
    assert "controller_id:" in out
    code, _, err = _run(capsys, "device", "accept", "stm32-0011")
    assert code == 1 and "409" in err
    code, _, err = _run(capsys, "release", "retire", "1.1.0")
    assert code == 0


def test_admin_commands_find_a_local_server_by_its_data_folder(
    served: tuple[str, Path, list[str]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _url, data, _ = served
    monkeypatch.delenv("STM32OTA_SERVER", raising=False)
    monkeypatch.delenv("STM32OTA_TOKEN", raising=False)
    code, out, _ = _run(capsys, "device", "list", "--data", str(data), "--json")
    assert code == 0 and json.loads(out) == []
    code, _, err = _run(capsys, "device", "list", "--data", str(data), "--token", "wrong")
    assert code == 1 and "401" in err and "hint:" in err


def test_admin_command_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("STM32OTA_SERVER", "STM32OTA_TOKEN", "STM32OTA_DATA"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = _run(capsys, "device", "list")
    assert code == 1 and "no server given" in err
    code, _, err = _run(capsys, "device", "list", "--server", "http://127.0.0.1:1", "--token", "t")
    assert code == 1 and "cannot reach the server" in err
    code, _, err = _run(capsys, "release", "add", str(tmp_path / "missing.bin"), "--server", "http://x", "--token", "t")
    assert code == 1 and "cannot read" in err
    code, _, err = _run(
        capsys, "rollout", "create", "1.0.0", "--percentages", "a,b", "--server", "http://x", "--token", "t"
    )
    assert code == 1 and "--percentages" in err


def test_serve_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "serve")
    assert code == 1 and "no data folder" in err
    code, _, err = _run(capsys, "serve", "--data", str(tmp_path), "--listen", "nonsense")
    assert code == 1 and "listen" in err
    code, _, err = _run(capsys, "serve", "--data", str(tmp_path), "--config", str(tmp_path / "none.toml"))
    assert code == 1 and "cannot read the config file" in err
    code, _, err = _run(
        capsys, "serve", "--data", str(tmp_path), "--trusted-key", str(tmp_path / "none.pem"), "--listen", "127.0.0.1:0"
    )
    assert code == 1 and "trusted_keys" in err
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = _run(capsys, "serve", "--data", str(tmp_path), "--listen", f"127.0.0.1:{port}")
        assert code == 1 and f"cannot listen on 127.0.0.1:{port}" in err
    for url, message in (
        ("mysql://a@b/c", "not supported"),
        ("::nonsense", "not a database URL"),
        ("postgresql://u:secret@127.0.0.1:1/db", "cannot open the database postgresql://u:***@127.0.0.1:1/db"),
    ):
        code, _, err = _run(capsys, "serve", "--data", str(tmp_path), "--database", url, "--listen", "127.0.0.1:0")
        assert code == 1 and message in err, err
        assert "secret" not in err and "Traceback" not in err


def test_config_file_and_overrides(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text('data = "/srv/ota"\nlisten = "0.0.0.0:8080"\npoll_interval = 60\ntenants = ["A", "B"]\n')
    settings = load_settings(config, listen="127.0.0.1:0")
    assert settings.listen == "127.0.0.1:0" and settings.poll_interval == 60 and settings.tenants == ("A", "B")
    assert settings.data == Path("/srv/ota") and settings.database_url == "sqlite:////srv/ota/stm32ota.db"
    for text, message in (
        ("data = \n", "not valid TOML"),
        ('data = "x"\ncolour = 1\n', "unknown setting"),
        ('data = "x"\npoll_interval = "often"\n', "poll_interval"),
        ('data = "x"\npoll_interval = 0\n', "poll_interval"),
        ('data = "x"\ntenants = ["../x"]\n', "tenant"),
        ('data = "x"\nlisten = 8080\n', "listen"),
    ):
        config.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_settings(config)
