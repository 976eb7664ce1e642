"""Prometheus metrics (prometheus-client), one registry per application so test apps do not collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.polls = Counter("stm32ota_ddi_polls", "DDI polls answered", ["result"], registry=r)
        self.downloads = Counter("stm32ota_artifact_downloads", "Artifact downloads started", ["kind"], registry=r)
        self.download_bytes = Counter("stm32ota_artifact_bytes", "Artifact bytes served", registry=r)
        self.feedback = Counter(
            "stm32ota_ddi_feedback",
            "DDI feedback messages by execution and resulting action state",
            ["execution", "state"],
            registry=r,
        )
        self.rollouts = Gauge("stm32ota_rollouts", "Rollouts by state", ["state"], registry=r)
        self.actions = Gauge("stm32ota_actions", "Actions by state", ["state"], registry=r)
        self.latency = Histogram(
            "stm32ota_http_request_duration_seconds",
            "HTTP request latency",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.db_errors = Counter("stm32ota_db_unavailable", "Requests answered 503: database unavailable", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
