"""The poll: ``GET /{tenant}/controller/v1/{controllerId}`` (hawkBit ``DdiControllerBase``, ``DdiConfig``,
``DdiPolling``; ``ddi_api.md``).

hawkBit answers ``{"config": {"polling": {"sleep": "HH:MM:SS"}}, "_links": {...}}``; the links present depend on
the state: ``deploymentBase/{actionId}?c=...`` for an open action, ``cancelAction/{id}`` while it is being
cancelled, ``installedBase/{id}`` for the last finished one, ``configData`` when the server wants attributes.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from tests.relay.ddi_conformance.adapters import Deployment, Device, ServerUnderTest
from tests.relay.ddi_conformance.ddi_client import call

SLEEP = re.compile(r"^\d{2}:[0-5]\d:[0-5]\d$")
JSON_TYPES = {"application/json", "application/hal+json"}


def _links(document: dict[str, object]) -> dict[str, dict[str, str]]:
    links = document.get("_links", {})
    assert isinstance(links, dict), document
    return links


def test_poll_answers_config_polling_sleep(device: Device) -> None:
    reply = device.get()
    assert reply.status == 200, reply
    assert reply.media_type in JSON_TYPES, reply.headers
    document = reply.json()
    sleep = document["config"]["polling"]["sleep"]
    assert isinstance(sleep, str) and SLEEP.match(sleep), sleep
    for name, link in _links(document).items():
        assert set(link) >= {"href"}, (name, link)
        assert link["href"].startswith(device.url + "/"), (name, link, device.url)


def test_poll_without_token_is_401(device: Device) -> None:
    reply = call("GET", device.url)
    assert reply.status == 401, reply


def test_poll_with_wrong_token_is_refused(device: Device) -> None:
    reply = call("GET", device.url, token=device.token[::-1] + "x")
    assert reply.status in (401, 403), reply


def test_poll_with_another_devices_token_is_refused(sut: ServerUnderTest, device: Device) -> None:
    other = sut.register()
    reply = call("GET", device.url, token=other.token)
    assert reply.status in (401, 403), reply


def test_poll_asks_new_device_for_config_data(device: Device) -> None:
    links = _links(device.get().json())
    assert "configData" in links, links
    assert links["configData"]["href"] == device.url + "/configData"
    assert "deploymentBase" not in links


def test_poll_offers_deployment_base_when_assigned(deployment: Deployment) -> None:
    device = deployment.device
    links = _links(device.get().json())
    assert "deploymentBase" in links, links
    href = urlsplit(links["deploymentBase"]["href"])
    assert re.fullmatch(re.escape(urlsplit(device.url).path) + r"/deploymentBase/[^/]+", href.path), href


def test_deployment_link_carries_change_hash(deployment: Deployment) -> None:
    """hawkBit's link is ``deploymentBase/{id}?c=<hash>``: the hash changes when the action does (cacheable)."""
    links = _links(deployment.device.get().json())
    query = parse_qs(urlsplit(links["deploymentBase"]["href"]).query)
    assert query.get("c") and query["c"][0], links
    # The same action polled again gives the same URL, so a client can cache by it.
    assert _links(deployment.device.get().json())["deploymentBase"] == links["deploymentBase"]


def test_poll_has_etag_and_honours_if_none_match(device: Device) -> None:
    first = device.get()
    etag = first.header("etag")
    assert etag, first.headers
    again = device.get(headers={"If-None-Match": etag})
    assert again.status == 304, again
    assert again.body == b""
    other = device.get(headers={"If-None-Match": '"not-this-one"'})
    assert other.status == 200 and other.json() == first.json()


def test_poll_etag_changes_when_a_deployment_arrives(sut: ServerUnderTest, device: Device) -> None:
    """A client caching by ETag must not miss an assignment: the old ETag no longer matches."""
    etag = device.get().header("etag")
    assert etag
    sut.deploy(device)
    reply = device.get(headers={"If-None-Match": etag})
    assert reply.status == 200, reply
    assert "deploymentBase" in _links(reply.json())
    assert reply.header("etag") != etag
