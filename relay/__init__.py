"""The OTA server and the field gateway (aiohttp).  Not built yet: see the relay issue."""
