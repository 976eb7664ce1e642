"""``GET cancelAction/{actionId}`` and its feedback (hawkBit ``DdiCancel``, ``DdiCancelActionToStop``).

When the server cancels an open action, the poll links ``cancelAction/{id}`` instead of ``deploymentBase``; the
resource is ``{"id": "<id>", "cancelAction": {"stopId": "<id of the action to stop>"}}``.  The device answers on
``cancelAction/{id}/feedback``: closed + success -> CANCELED, closed + failure -> ERROR, rejected -> the cancel is
refused (CANCEL_REJECTED) and the action goes on.
"""

from __future__ import annotations

from tests.relay.ddi_conformance.adapters import Deployment, ServerUnderTest
from tests.relay.ddi_conformance.test_deployment import action_id_of
from tests.relay.ddi_conformance.test_feedback import feedback


def test_cancel_action_link_and_shape(sut: ServerUnderTest, deployment: Deployment) -> None:
    action_id = action_id_of(deployment)
    sut.cancel(deployment)
    links = deployment.device.get().json().get("_links", {})
    assert "deploymentBase" not in links, links
    assert links["cancelAction"]["href"] == f"{deployment.device.url}/cancelAction/{action_id}", links
    reply = deployment.device.get(f"/cancelAction/{action_id}")
    assert reply.status == 200, reply
    assert reply.json() == {"id": action_id, "cancelAction": {"stopId": action_id}}


def test_cancel_feedback_closed_success_cancels(sut: ServerUnderTest, deployment: Deployment) -> None:
    action_id = action_id_of(deployment)
    sut.cancel(deployment)
    reply = deployment.device.post(f"/cancelAction/{action_id}/feedback", feedback("closed", "success"))
    assert reply.status == 200, reply
    assert sut.action_status(deployment) == "CANCELED"
    links = deployment.device.get().json().get("_links", {})
    assert "cancelAction" not in links and "deploymentBase" not in links, links
