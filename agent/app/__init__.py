"""The composition root: the only package that wires the others together.

- `jobs`: what one camera worker needs to run a camera (picklable, compared by value for reloads).
- `worker`: the entry point a spawned camera worker process runs (pipelines → outbox, reports, heartbeat).
- `cameras`: from configuration and discovery inventory to the list of camera jobs.
- `config_map`, `mapping`: configuration sections onto the settings each package takes (packages other than
  app and cli never see the configuration models).
- `daemon`: `matthan-agent run` — outbox, MQTT, relay, health, commands, discovery and the worker pool.
"""
