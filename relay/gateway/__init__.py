"""The field gateway: one server action, N serial MCUs, nothing lost (``stm32ota gateway``, docs/gateway.md)."""

from __future__ import annotations

from .config import GatewayConfig, PortConfig, load_config
from .errors import ArtifactError, ConfigError, GatewayError, UplinkError
from .service import Gateway

__all__ = [
    "ArtifactError",
    "ConfigError",
    "Gateway",
    "GatewayConfig",
    "GatewayError",
    "PortConfig",
    "UplinkError",
    "load_config",
]
