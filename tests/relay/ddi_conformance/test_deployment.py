"""``GET deploymentBase/{actionId}`` (hawkBit ``DdiDeploymentBase``, ``DdiDeployment``, ``DdiChunk``,
``DdiArtifact``, ``DdiArtifactHash``, ``DdiActionHistory``) and the artifact resources it links to.

hawkBit: ``{"id": "<action id>", "deployment": {"download": skip|attempt|forced, "update": skip|attempt|forced,
"maintenanceWindow": available|unavailable (absent without a window), "chunks": [{"part", "version", "name",
"artifacts": [{"filename", "size", "hashes": {"sha1", "md5", "sha256"}, "_links": {"download", "download-http",
"md5sum", "md5sum-http"}}]}]}, "actionHistory": {"status", "messages"} (only with ?actionHistory=N)}``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from tests.relay.ddi_conformance.adapters import Deployment, Device, ServerUnderTest
from tests.relay.ddi_conformance.ddi_client import Reply, call

HANDLING = {"skip", "attempt", "forced"}


def deployment_link(deployment: Deployment) -> str:
    links = deployment.device.get().json().get("_links", {})
    assert "deploymentBase" in links, links
    return str(links["deploymentBase"]["href"])


def fetch_deployment(deployment: Deployment, query: str = "") -> dict[str, Any]:
    href = deployment_link(deployment)
    if query:
        href += ("&" if "?" in href else "?") + query
    reply = call("GET", href, token=deployment.device.token)
    assert reply.status == 200, reply
    document = reply.json()
    assert isinstance(document, dict), document
    return document


def action_id_of(deployment: Deployment) -> str:
    return deployment_link(deployment).split("?")[0].rstrip("/").rsplit("/", 1)[1]


def the_artifact(document: dict[str, Any], deployment: Deployment) -> dict[str, Any]:
    artifacts = [a for chunk in document["deployment"]["chunks"] for a in chunk.get("artifacts", [])]
    matching = [a for a in artifacts if a["filename"] == deployment.filename]
    assert len(matching) == 1, artifacts
    return dict(matching[0])


def test_deployment_base_shape(deployment: Deployment) -> None:
    document = fetch_deployment(deployment)
    assert document["id"] == action_id_of(deployment)
    assert isinstance(document["id"], str)
    body = document["deployment"]
    assert body["download"] in HANDLING and body["update"] in HANDLING, body
    assert body.get("maintenanceWindow") in (None, "available", "unavailable"), body
    chunks = body["chunks"]
    assert isinstance(chunks, list) and chunks, body
    for chunk in chunks:
        for key in ("part", "version", "name"):
            assert isinstance(chunk[key], str) and chunk[key], chunk
    assert any(chunk["version"] == deployment.version for chunk in chunks), chunks
    artifact = the_artifact(document, deployment)
    assert artifact["size"] == len(deployment.artifact)
    assert artifact["hashes"]["sha1"] == hashlib.sha1(deployment.artifact).hexdigest()
    assert artifact["_links"]["download"]["href"].startswith("http")


def test_forced_assignment_is_forced(deployment: Deployment) -> None:
    body = fetch_deployment(deployment)["deployment"]
    assert body["download"] == "forced" and body["update"] == "forced", body


def test_soft_assignment_is_attempt(sut: ServerUnderTest, device: Device) -> None:
    body = fetch_deployment(sut.deploy(device, forced=False))["deployment"]
    assert (body["download"], body["update"]) == ("attempt", "attempt"), body


def test_download_only_skips_the_update(sut: ServerUnderTest, device: Device) -> None:
    body = fetch_deployment(sut.deploy(device, download_only=True))["deployment"]
    assert body["download"] in ("attempt", "forced") and body["update"] == "skip", body


@pytest.mark.parametrize("window", ["open", "closed"])
def test_maintenance_window(sut: ServerUnderTest, device: Device, window: str) -> None:
    """hawkBit: ``maintenanceWindow`` is ``available`` or ``unavailable``; while unavailable, ``update`` is skip."""
    body = fetch_deployment(sut.deploy(device, window=window))["deployment"]
    if window == "open":
        assert body["maintenanceWindow"] == "available" and body["update"] == "forced", body
    else:
        assert body["maintenanceWindow"] == "unavailable" and body["update"] == "skip", body
        assert body["download"] == "forced", body


def test_artifact_has_sha1_md5_and_sha256(deployment: Deployment) -> None:
    hashes = the_artifact(fetch_deployment(deployment), deployment)["hashes"]
    data = deployment.artifact
    assert hashes == {
        "sha1": hashlib.sha1(data).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def test_artifact_links_follow_hawkbit(deployment: Deployment) -> None:
    links = the_artifact(fetch_deployment(deployment), deployment)["_links"]
    assert {"download", "download-http", "md5sum", "md5sum-http"} <= set(links), links
    assert links["md5sum"]["href"] == links["download"]["href"] + ".MD5SUM"
    assert links["download-http"]["href"].startswith("http://")


def test_md5sum_resource(deployment: Deployment) -> None:
    links = the_artifact(fetch_deployment(deployment), deployment)["_links"]
    reply = call("GET", links["md5sum"]["href"], token=deployment.device.token)
    assert reply.status == 200, reply
    assert reply.body.decode().strip() == f"{hashlib.md5(deployment.artifact).hexdigest()}  {deployment.filename}"


def test_action_history_on_request(deployment: Deployment) -> None:
    action_id = action_id_of(deployment)
    message = "conformance: writing slot 1"
    feedback = {"status": {"execution": "proceeding", "result": {"finished": "none"}, "details": [message]}}
    assert deployment.device.post(f"/deploymentBase/{action_id}/feedback", feedback).status == 200
    without = fetch_deployment(deployment)
    assert "actionHistory" not in without, without
    history = fetch_deployment(deployment, "actionHistory=5")["actionHistory"]
    assert isinstance(history["status"], str) and history["status"], history
    assert message in history["messages"], history


def test_unknown_action_is_404(deployment: Deployment) -> None:
    reply = deployment.device.get("/deploymentBase/987654321")
    assert reply.status == 404, reply


def test_deployment_needs_the_devices_own_token(sut: ServerUnderTest, deployment: Deployment) -> None:
    href = deployment_link(deployment)
    assert call("GET", href).status == 401
    other = sut.register()
    assert call("GET", href, token=other.token).status in (401, 403)


# -- the artifact download (hawkBit ``FileStreamingUtil``: RFC 9110 ranges, strong ETag) ------------------------
def download_href(deployment: Deployment) -> str:
    return str(the_artifact(fetch_deployment(deployment), deployment)["_links"]["download"]["href"])


def get_artifact(deployment: Deployment, headers: dict[str, str] | None = None) -> Reply:
    return call("GET", download_href(deployment), token=deployment.device.token, headers=headers)


def test_download_whole_artifact(deployment: Deployment) -> None:
    reply = get_artifact(deployment)
    assert reply.status == 200, reply
    assert reply.body == deployment.artifact
    assert int(reply.header("content-length") or -1) == len(deployment.artifact)
    assert reply.header("accept-ranges") == "bytes", reply.headers
    assert reply.header("etag"), reply.headers
    assert reply.header("last-modified"), reply.headers


def test_download_needs_the_token(deployment: Deployment) -> None:
    reply = call("GET", download_href(deployment))
    assert reply.status == 401, reply


def test_download_etag_is_sha1(deployment: Deployment) -> None:
    etag = get_artifact(deployment).header("etag") or ""
    assert etag.strip('"') == hashlib.sha1(deployment.artifact).hexdigest(), etag
    assert not etag.startswith("W/"), "hawkBit's ETag is strong"


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=100-", 100, None), ("bytes=-50", None, None), ("bytes=10-10", 10, 10)],
    ids=["first-100", "open-ended", "suffix", "one-byte"],
)
def test_download_single_range_is_206(deployment: Deployment, spec: str, start: int | None, end: int | None) -> None:
    data = deployment.artifact
    size = len(data)
    if start is None:  # suffix: the last 50 bytes
        start, end = size - 50, size - 1
    elif end is None:
        end = size - 1
    reply = get_artifact(deployment, {"Range": spec})
    assert reply.status == 206, reply
    assert reply.header("content-range") == f"bytes {start}-{end}/{size}", reply.headers
    assert reply.body == data[start : end + 1]
    assert int(reply.header("content-length") or -1) == end - start + 1


def test_download_multiple_ranges_are_multipart(deployment: Deployment) -> None:
    from tests.relay.ddi_conformance.ddi_client import byteranges

    data = deployment.artifact
    size = len(data)
    reply = get_artifact(deployment, {"Range": "bytes=0-9,100-199"})
    assert reply.status == 206, reply
    assert reply.media_type == "multipart/byteranges", reply.headers
    assert byteranges(reply) == [(f"bytes 0-9/{size}", data[0:10]), (f"bytes 100-199/{size}", data[100:200])]


def test_download_range_beyond_the_end_is_416(deployment: Deployment) -> None:
    size = len(deployment.artifact)
    reply = get_artifact(deployment, {"Range": f"bytes={size + 10}-{size + 20}"})
    assert reply.status == 416, reply
    assert reply.header("content-range") == f"bytes */{size}", reply.headers


def test_download_if_range_with_the_etag_gives_the_range(deployment: Deployment) -> None:
    etag = get_artifact(deployment).header("etag")
    assert etag
    reply = get_artifact(deployment, {"Range": "bytes=0-9", "If-Range": etag})
    assert reply.status == 206, reply
    assert reply.body == deployment.artifact[:10]


def test_download_if_range_with_another_etag_gives_everything(deployment: Deployment) -> None:
    reply = get_artifact(deployment, {"Range": "bytes=0-9", "If-Range": '"0000000000000000000000000000000000000000"'})
    assert reply.status == 200, reply
    assert reply.body == deployment.artifact


def test_download_if_match_with_another_etag_is_412(deployment: Deployment) -> None:
    reply = get_artifact(deployment, {"If-Match": '"0000000000000000000000000000000000000000"'})
    assert reply.status == 412, reply
