"""Mắt Thần edge agent: ONVIF discovery, motion detection and durable MQTT for village camera clusters."""

__version__ = "0.1.0"
