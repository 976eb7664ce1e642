"""The gateway's Prometheus metrics (prometheus-client), in a registry of its own per gateway."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["GatewayMetrics"]


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.jobs = Counter("stm32ota_gateway_jobs", "Jobs finished, by result", ["result"], registry=r)
        self.relayed_bytes = Counter("stm32ota_gateway_relayed_bytes", "Image bytes relayed to devices", registry=r)
        self.delivered = Counter("stm32ota_gateway_outbox_delivered", "Outbox messages delivered", ["kind"], registry=r)
        self.rejected = Counter(
            "stm32ota_gateway_outbox_rejected", "Outbox messages the server refused for good (4xx)", registry=r
        )
        self.backlog = Gauge("stm32ota_gateway_outbox_backlog", "Messages waiting for the uplink", registry=r)
        self.ports = Gauge("stm32ota_gateway_ports", "Ports by state", ["state"], registry=r)
        self.port_events = Counter(
            "stm32ota_gateway_port_events", "Discovered ports plugged in / unplugged", ["event"], registry=r
        )
        self.uplink_up = Gauge("stm32ota_gateway_uplink_up", "1 when the last delivery reached the server", registry=r)
        self.requests = Gauge("stm32ota_gateway_http_requests", "HTTP requests sent to the server", registry=r)
        self.download_bytes = Gauge("stm32ota_gateway_download_bytes", "Artifact bytes downloaded", registry=r)
