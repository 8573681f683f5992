"""Real Mosquitto broker fixtures (filled in by the MQTT work)."""
