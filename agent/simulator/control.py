"""Fault control from another process: JSON lines over a unix socket (see agent/cli/simulate.py for the format)."""

from __future__ import annotations

import json
import os
import socket
import socketserver
import threading
from typing import Any

from agent.simulator.scenario import ScenarioError

MAX_LINE = 65536


def handle_request(cluster: Any, req: Any) -> dict[str, Any]:
    """Apply one control request to the cluster; errors come back as {"error": ...}, never raised."""
    if not isinstance(req, dict):
        return {"error": "expected a JSON object"}
    if req.get("list"):
        return {"ok": True, "cameras": [{"name": i.name, "ip": i.ip, "faults": sorted(i.faults), "down": i.down}
                                        for i in cluster.infos()]}
    unknown = set(req) - {"camera", "fault", "args", "clear"}
    if unknown:
        return {"error": f"unknown key(s) {', '.join(sorted(unknown))}; allowed: camera, fault, args, clear, list"}
    camera, fault, args = req.get("camera"), req.get("fault"), req.get("args") or {}
    if not isinstance(camera, str) or not isinstance(fault, str) or not isinstance(args, dict):
        return {"error": "need \"camera\" and \"fault\" strings, and \"args\" as an object if given"}
    try:
        info = cluster.clear(camera, fault) if req.get("clear") else cluster.inject(camera, fault, **args)
    except ScenarioError as exc:
        return {"error": str(exc)}
    return {"ok": True, "camera": info.name, "ip": info.ip, "faults": sorted(info.faults), "down": info.down}


class ControlServer:
    def __init__(self, cluster: Any, path: str) -> None:
        if os.path.exists(path):
            os.unlink(path)

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for line in self.rfile:
                    if len(line) > MAX_LINE:
                        reply: dict[str, Any] = {"error": "line too long"}
                    else:
                        try:
                            reply = handle_request(cluster, json.loads(line))
                        except ValueError as exc:
                            reply = {"error": f"not JSON: {exc}"}
                    self.wfile.write((json.dumps(reply) + "\n").encode())

        self.path = path
        self.server = socketserver.ThreadingUnixStreamServer(path, Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="sim-control", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if os.path.exists(self.path):
            os.unlink(self.path)


def send_control(path: str, request: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    """Client side: send one request and return the reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall((json.dumps(request) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)
