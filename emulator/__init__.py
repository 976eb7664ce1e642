"""An emulated STM32 bootloader on a virtual serial port (flash model, OTA and AN4657 IAP personalities)."""
