"""The gateway's errors: each a :class:`~protocol.errors.Stm32OtaError` with a message a technician can act on."""

from __future__ import annotations

from protocol.errors import ImageError, Stm32OtaError

__all__ = ["ArtifactError", "ConfigError", "GatewayError", "UplinkError"]


class GatewayError(Stm32OtaError):
    """Something the gateway itself cannot do."""


class ConfigError(GatewayError, ValueError):
    """The configuration file or the flags are wrong."""


class UplinkError(GatewayError, ConnectionError):
    """The server did not answer as DDI says (or not at all).  ``retry_after`` is the server's wish, if any."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500


class ArtifactError(ImageError):
    """A downloaded artifact is not what the server said it is (size, hash), or a bundle is malformed."""
