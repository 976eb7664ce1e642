"""The OTA server: hawkBit DDI for devices and gateways, an admin REST API, signed releases, staged rollouts."""

from __future__ import annotations

from .app import create_app
from .settings import Settings, load_settings

__all__ = ["Settings", "create_app", "load_settings"]
