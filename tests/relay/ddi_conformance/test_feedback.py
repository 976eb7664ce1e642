"""``POST deploymentBase/{actionId}/feedback`` (hawkBit ``DdiActionFeedback``, ``DdiStatus``, ``DdiResult``,
``DdiProgress``) and ``GET installedBase/{actionId}``.

Body: ``{"time": optional, "status": {"execution": closed|proceeding|canceled|scheduled|rejected|resumed|
downloaded|download, "result": {"finished": success|failure|none, "progress": {"cnt", "of"}}, "code": int,
"details": [str]}}``.  ``ddi_api.md`` maps the executions to action states: canceled -> CANCELED, rejected ->
WARNING, closed -> FINISHED (success, none) or ERROR (failure), download -> DOWNLOAD, downloaded -> DOWNLOADED,
proceeding/scheduled/resumed -> RUNNING.  Feedback to an action that is no longer active gets 410.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.relay.ddi_conformance.adapters import Deployment, ServerUnderTest
from tests.relay.ddi_conformance.ddi_client import call
from tests.relay.ddi_conformance.test_deployment import action_id_of, fetch_deployment

EXECUTIONS = ("closed", "proceeding", "canceled", "scheduled", "rejected", "resumed", "downloaded", "download")
#: ddi_api.md's table: execution (with result.finished) -> the action's status afterwards
MAPPING = {
    "proceeding": "RUNNING",
    "scheduled": "RUNNING",
    "resumed": "RUNNING",
    "download": "DOWNLOAD",
    "downloaded": "DOWNLOADED",
    "canceled": "CANCELED",
    "rejected": "WARNING",
}


def feedback(execution: str, finished: str = "none", **extra: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"execution": execution, "result": {"finished": finished}}
    status["result"].update(extra.pop("result", {}))
    status.update(extra)
    return {"status": status}


def send(deployment: Deployment, body: Any, action_id: str | None = None) -> int:
    action_id = action_id or action_id_of(deployment)
    return deployment.device.post(f"/deploymentBase/{action_id}/feedback", body).status


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_feedback_in_each_execution_state_is_accepted(deployment: Deployment, execution: str) -> None:
    body = feedback(
        execution,
        "success" if execution == "closed" else "none",
        result={"progress": {"cnt": 1, "of": 2}},
        code=200,
        details=[f"conformance: {execution}"],
    )
    body["time"] = "2026-12-01T12:00:00Z"
    assert send(deployment, body) == 200


@pytest.mark.parametrize("execution", sorted(MAPPING))
def test_feedback_maps_to_action_status(sut: ServerUnderTest, deployment: Deployment, execution: str) -> None:
    assert send(deployment, feedback(execution)) == 200
    assert sut.action_status(deployment) == MAPPING[execution]


@pytest.mark.parametrize(("finished", "status"), [("success", "FINISHED"), ("none", "FINISHED"), ("failure", "ERROR")])
def test_closed_feedback_ends_the_action(
    sut: ServerUnderTest, deployment: Deployment, finished: str, status: str
) -> None:
    assert send(deployment, feedback("proceeding", result={"progress": {"cnt": 1, "of": 3}})) == 200
    assert send(deployment, feedback("closed", finished, details=["conformance: done"])) == 200
    assert sut.action_status(deployment) == status
    links = deployment.device.get().json().get("_links", {})
    assert "deploymentBase" not in links, links


def test_finished_action_offers_installed_base(deployment: Deployment) -> None:
    action_id = action_id_of(deployment)
    assert send(deployment, feedback("closed", "success")) == 200
    links = deployment.device.get().json().get("_links", {})
    assert links["installedBase"]["href"] == f"{deployment.device.url}/installedBase/{action_id}", links


def test_installed_base_shape(deployment: Deployment) -> None:
    action_id = action_id_of(deployment)
    offered = fetch_deployment(deployment)
    assert deployment.device.get(f"/installedBase/{action_id}").status == 404  # still active
    assert send(deployment, feedback("closed", "success")) == 200
    reply = deployment.device.get(f"/installedBase/{action_id}")
    assert reply.status == 200, reply
    document = reply.json()
    assert document["id"] == action_id
    assert [c["version"] for c in document["deployment"]["chunks"]] == [
        c["version"] for c in offered["deployment"]["chunks"]
    ]


def test_feedback_to_a_closed_action_is_410(deployment: Deployment) -> None:
    action_id = action_id_of(deployment)
    assert send(deployment, feedback("closed", "success"), action_id) == 200
    assert send(deployment, feedback("proceeding"), action_id) == 410


@pytest.mark.parametrize(
    "body",
    [
        {"status": {"execution": "exploded", "result": {"finished": "none"}}},
        {"status": {"execution": "closed", "result": {"finished": "maybe"}}},
        {"status": {"result": {"finished": "none"}}},
        {"status": {"execution": "proceeding", "result": {"finished": "none", "progress": {"cnt": "two"}}}},
        {"status": "closed"},
        [],
    ],
    ids=["bad-execution", "bad-finished", "no-execution", "cnt-not-int", "status-not-object", "not-an-object"],
)
def test_malformed_feedback_is_400(deployment: Deployment, body: Any) -> None:
    assert send(deployment, body) == 400


def test_feedback_that_is_not_json_is_400(deployment: Deployment) -> None:
    action_id = action_id_of(deployment)
    reply = call(
        "POST",
        f"{deployment.device.url}/deploymentBase/{action_id}/feedback",
        token=deployment.device.token,
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 400, reply


def test_feedback_needs_the_token(deployment: Deployment) -> None:
    action_id = action_id_of(deployment)
    url = f"{deployment.device.url}/deploymentBase/{action_id}/feedback"
    reply = call("POST", url, json_body=feedback("proceeding"))
    assert reply.status == 401, reply
