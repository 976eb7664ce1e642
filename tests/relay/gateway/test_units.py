"""The gateway's pure parts, no server: the bundle reader, the configuration, the journal, DDI parsing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from relay.gateway import ArtifactError, ConfigError, load_config
from relay.gateway.ddi import Deployment, backoff_delay, feedback_body, parse_sleep
from relay.gateway.journal import Journal
from relay.gateway.swu import mcu_image, read_members
from tests.peers.swu import build_swu, cpio_newc, sw_description

from .conftest import NEW


def test_the_mcu_image_comes_out_of_a_bundle_checked_against_sw_description() -> None:
    bundle = build_swu("1.1.0", {"demo-1.1.0.signed.bin": NEW})
    image = mcu_image(bundle)
    assert (image.name, image.data, image.version) == ("demo-1.1.0.signed.bin", NEW, "1.1.0")


def test_a_bundle_member_that_does_not_match_its_sha256_is_refused() -> None:
    description = sw_description("1.1.0", "stm32-gw", "1.0", {"app.bin": NEW}).encode()
    tampered = NEW[:100] + bytes([NEW[100] ^ 1]) + NEW[101:]
    with pytest.raises(ArtifactError, match="does not match the sha256"):
        mcu_image(cpio_newc({"sw-description": description, "app.bin": tampered}))


@pytest.mark.parametrize("name", ["../evil.bin", "/etc/passwd", "a/../../b", "dir//x", "a\\b"])
def test_path_traversal_in_a_member_name_is_refused(name: str) -> None:
    with pytest.raises(ArtifactError, match="name"):
        read_members(cpio_newc({"sw-description": b"x", name: b"data"}))


def test_path_traversal_in_sw_description_is_refused() -> None:
    description = sw_description("1.1.0", "b", "1", {"../app.bin": NEW}).encode()
    with pytest.raises(ArtifactError, match="traversal"):
        mcu_image(cpio_newc({"sw-description": description, "app.bin": NEW}))


def test_a_bundle_without_sw_description_first_or_cut_short_is_refused() -> None:
    with pytest.raises(ArtifactError, match="sw-description"):
        mcu_image(cpio_newc({"app.bin": NEW}))
    with pytest.raises(ArtifactError):
        mcu_image(build_swu("1.1.0", {"app.bin": NEW})[:500])
    with pytest.raises(ArtifactError, match="cpio"):
        read_members(b"not an archive at all" * 10)


def test_config_from_toml_with_flags_on_top(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        'server = "http://ota:8080"\ntenant = "T"\ngateway_token = "g"\nbaud = 921600\n'
        '[target_tokens]\n"stm32-ab" = "t"\n[[port]]\nurl = "/dev/ttyUSB0"\n'
        '[[port]]\nurl = "/dev/ttyUSB1"\nbaud = 115201\n'
    )
    config = load_config(path, tenant="OTHER")
    assert config.tenant == "OTHER" and config.server == "http://ota:8080"
    assert [(p.url, p.baud) for p in config.ports] == [("/dev/ttyUSB0", 921600), ("/dev/ttyUSB1", 115201)]
    assert config.token_for("stm32-ab") == "TargetToken t"
    assert config.token_for("stm32-cd") == "GatewayToken g"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('server = "http://x"\nbogus = 1\n[[port]]\nurl = "p"\n', "unknown key 'bogus'"),
        ('server = "http://x"\nbaud = "fast"\n[[port]]\nurl = "p"\n', "baud must be int"),
        ('server = "ftp://x"\n[[port]]\nurl = "p"\n', "http"),
        ('server = "http://x"\n', "no serial ports"),
        ('server = "http://x"\n[[port]]\nbaud = 1\n', "url is missing"),
        ("server = \n", "not valid TOML"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


async def test_the_journal_keeps_jobs_and_the_outbox_in_order_across_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = await Journal.open(path)
    job = await journal.start_job("stm32-a", "5", "/dev/x", "1.1.0")
    assert await journal.start_job("stm32-a", "5", "/dev/x", "1.1.0") == job  # the same action, the same job
    for cnt in range(3):
        await journal.enqueue("stm32-a", "feedback", "p", {"cnt": cnt}, coalesce_key="progress")
    await journal.enqueue("stm32-a", "feedback", "p", {"closed": True}, job_update=(job.id, {"state": "succeeded"}))
    first = (await journal.pending())[0]
    await journal.delivered(first.seq)
    await journal.close()

    again = await Journal.open(path)
    assert [e.body for e in await again.pending()] == [{"closed": True}]  # progress coalesced, one delivered
    (job_again,) = await again.jobs()
    assert job_again.state == "succeeded" and job_again.final
    assert await again.jobs(active_only=True) == []
    await again.close()


def test_ddi_parsing_and_feedback_shapes() -> None:
    assert parse_sleep("00:05:30") == 330.0
    assert parse_sleep("garbage") == 300.0
    assert all(0 <= backoff_delay(n) <= 60 for n in range(20))
    body = feedback_body("7", "proceeding", progress=(3, 10), details=["x"])
    assert body["status"] == {
        "execution": "proceeding",
        "result": {"finished": "none", "progress": {"cnt": 3, "of": 10}},
        "details": ["x"],
    }
    dep = Deployment.from_json(
        {
            "id": "8",
            "deployment": {
                "download": "forced",
                "update": "skip",
                "maintenanceWindow": "unavailable",
                "chunks": [
                    {
                        "part": "os",
                        "version": "1.0",
                        "artifacts": [
                            {
                                "filename": "a",
                                "size": 3,
                                "hashes": {"sha1": hashlib.sha1(b"abc").hexdigest()},
                                "_links": {"download": {"href": "u"}},
                            }
                        ],
                    }
                ],
            },
        }
    )
    assert (dep.action_id, dep.version, dep.may_install, dep.artifacts[0].download_url) == ("8", "1.0", False, "u")


async def test_an_action_id_that_comes_back_with_other_content_is_a_new_job(tmp_path: Path) -> None:
    """gooseBit's action id is its software id: the journal keys a job by id *and* what the deployment holds."""
    journal = await Journal.open(tmp_path / "journal.sqlite3")
    try:
        first = await journal.start_job("stm32-a", "1", "/dev/x", "1.1.0", "digest-1.1.0")
        seq = await journal.enqueue(
            "stm32-a",
            "feedback",
            "deploymentBase/1/feedback",
            {"closed": 1},
            job_update=(first.id, {"state": "succeeded"}),
        )
        # the same content again before the result went up: the server has not heard it, the old job stands
        assert await journal.start_job("stm32-a", "1", "/dev/x", "1.1.0", "digest-1.1.0") == (await journal.jobs())[0]
        # action 1 again, but another release behind it: a new deployment, not the finished one
        second = await journal.start_job("stm32-a", "1", "/dev/x", "1.2.0", "digest-1.2.0")
        assert second.id != first.id and second.state == "new" and not second.final
        assert (await journal.job("stm32-a", "1")) == second  # the latest job for the id
        # a finished job's content offered again after its result reached the server: re-assigned, a new job
        done = await journal.start_job("stm32-b", "1", "/dev/y", "1.1.0", "digest-1.1.0")
        seq = await journal.enqueue(
            "stm32-b", "feedback", "deploymentBase/1/feedback", {"closed": 1}, job_update=(done.id, {"state": "failed"})
        )
        await journal.delivered(seq)
        # ... but not for an offer made before the delivery (a poll that crossed the result on the wire)
        crossed = await journal.start_job("stm32-b", "1", "/dev/y", "1.1.0", "digest-1.1.0", offered_at=0.0)
        assert crossed.id == done.id and crossed.final
        again = await journal.start_job("stm32-b", "1", "/dev/y", "1.1.0", "digest-1.1.0")
        assert again.id != done.id and again.state == "new"
    finally:
        await journal.close()


async def test_a_schema_1_journal_is_migrated_with_its_jobs(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "journal.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE jobs (id INTEGER PRIMARY KEY, controller_id TEXT NOT NULL, action_id TEXT NOT NULL,"
            " port TEXT NOT NULL, version TEXT, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
            " progress_cnt INTEGER NOT NULL DEFAULT 0, progress_of INTEGER NOT NULL DEFAULT 0,"
            " detail TEXT NOT NULL DEFAULT '', created REAL NOT NULL, updated REAL NOT NULL,"
            " UNIQUE (controller_id, action_id));"
            "INSERT INTO jobs VALUES (1, 'stm32-a', '1', '/dev/x', '1.0', 'relaying', 1, 5, 100, '', 0, 0);"
            "PRAGMA user_version=1;"
        )
    journal = await Journal.open(path)
    try:
        (job,) = await journal.jobs()
        assert (job.state, job.attempts, job.deployment) == ("relaying", 1, "")
        again = await journal.start_job("stm32-a", "1", "/dev/x", "1.1", "other")  # no UNIQUE left in the way
        assert again.id != job.id
    finally:
        await journal.close()


def test_a_deployment_digest_follows_its_content() -> None:
    def dep(version: str, sha1: str) -> Deployment:
        art = {"filename": "a.swu", "size": 3, "hashes": {"sha1": sha1}, "_links": {"download": {"href": "u"}}}
        return Deployment.from_json(
            {"id": "1", "deployment": {"chunks": [{"part": "os", "version": version, "artifacts": [art]}]}}
        )

    assert dep("1.1", "ab").digest == dep("1.1", "ab").digest
    assert len({dep("1.1", "ab").digest, dep("1.2", "ab").digest, dep("1.1", "cd").digest}) == 3


def test_path_traversal_in_an_artifact_name_or_hash_never_reaches_the_file_system(tmp_path: Path) -> None:
    """The cache names files by the artifact's hash, never by its filename; a hash that is not hex is refused."""
    from relay.gateway.artifacts import ArtifactCache, firmware_of
    from relay.gateway.ddi import Artifact

    assert firmware_of(NEW, "../../etc/cron.d/evil.bin").name == "evil.bin"
    cache = ArtifactCache(tmp_path / "cache", client=None)  # type: ignore[arg-type]
    evil = Artifact(filename="../x", size=3, hashes={"sha256": "../../../etc/passwd"}, links={"download": "u"})

    async def fetch() -> bytes:
        return await cache.fetch("stm32-a", evil)

    import asyncio

    with pytest.raises(ArtifactError, match="no hash to check it by"):
        asyncio.run(fetch())
    assert not (tmp_path / "cache").exists()
