"""The OTA server (:mod:`relay.server`) and, beside it, the field gateway (a later issue); aiohttp."""
