"""The doctor's broker step: one real MQTT v5 connection with the agent's TLS and credentials."""

from __future__ import annotations

import os
from typing import Any

from agent.cli.doctor.targets import BrokerTarget

BROKER_TIMEOUT_S = 8.0


def probe_broker(b: BrokerTarget, timeout: float = BROKER_TIMEOUT_S) -> tuple[str | None, str]:
    """Connect, log in, disconnect. Returns (None, "") or (kind, detail) with kind auth/tls/refused/timeout."""
    import ssl
    import threading

    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"matthan-doctor-{os.getpid()}",
                         protocol=mqtt.MQTTv5)
    client.connect_timeout = timeout
    if b.user:
        client.username_pw_set(b.user, b.password)
    if b.tls:
        ctx = ssl.create_default_context(cafile=str(b.ca_file) if b.ca_file else None)
        if b.cert_file and b.key_file:
            ctx.load_cert_chain(str(b.cert_file), str(b.key_file))
        if b.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        client.tls_set_context(ctx)
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        outcome["reason"] = reason
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(b.host, b.port, keepalive=10)
    except ssl.SSLError as exc:
        return "tls", f"TLS: {exc.reason or exc}"
    except ConnectionRefusedError:
        return "refused", "connection refused"
    except TimeoutError:
        return "timeout", "no answer"
    except OSError as exc:
        return "timeout", exc.strerror or str(exc)
    client.loop_start()
    try:
        if not done.wait(timeout):
            return "timeout", "connected but the broker sent no CONNACK"
        reason = outcome["reason"]
        if reason.is_failure:
            kind = "auth" if reason.value in (0x04, 0x05, 0x86, 0x87, 0x8C) else "refused"
            return kind, f"CONNACK: {reason}"
        return None, ""
    finally:
        client.disconnect()
        client.loop_stop()


