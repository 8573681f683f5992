"""What the agent does at run time, exercised once inside the emulated unit sandbox (see sandbox.py).

Imports every native dependency, makes a ctypes callback, runs numpy/OpenCV, encodes and decodes video with
PyAV using threads, writes a SQLite WAL database, reads host metrics through psutil, opens the sockets the
agent opens (UDP multicast, TCP, unix, netlink) and runs a spawned worker pool. Prints SANDBOX-OK at the end.
"""

from __future__ import annotations

import ctypes
import socket
import sqlite3
import sys
import tempfile
import time
from pathlib import Path


def media(tmp: Path) -> None:
    import av
    import cv2
    import numpy as np

    path = tmp / "clip.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=15)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for i in range(15):
            img = np.full((96, 160, 3), i * 10, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    frames = []
    with av.open(str(path)) as src:
        src.streams.video[0].thread_type = "AUTO"
        frames = [f.to_ndarray(format="gray") for f in src.decode(video=0)]
    assert len(frames) == 15, len(frames)
    diff = cv2.absdiff(cv2.GaussianBlur(frames[0], (5, 5), 0), frames[-1])
    contours, _ = cv2.findContours((diff > 10).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    assert isinstance(contours, tuple)
    ok, jpeg = cv2.imencode(".jpg", frames[-1])
    assert ok and len(jpeg) > 100


def storage(tmp: Path) -> None:
    db = sqlite3.connect(tmp / "outbox.sqlite")
    assert db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    db.execute("CREATE TABLE t (x)")
    with db:
        db.execute("INSERT INTO t VALUES (1)")
    db.close()


def host() -> None:
    import psutil

    psutil.cpu_percent(interval=None)
    psutil.virtual_memory()
    psutil.disk_usage("/")
    assert psutil.net_if_addrs(), "no interfaces (netlink refused?)"
    psutil.boot_time()
    psutil.Process().memory_full_info()


def network() -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    udp.bind(("127.0.0.1", 0))
    mreq = socket.inet_aton("239.255.255.250") + socket.inet_aton("127.0.0.1")
    udp.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    udp.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname(), timeout=5)
    conn, _ = server.accept()
    client.sendall(b"x")
    assert conn.recv(1) == b"x"
    for s in (udp, server, client, conn):
        s.close()
    socket.socketpair()


def pool() -> None:
    from agent.supervisor import Supervisor, SupervisorSettings, WorkerState
    from tests.supervisor.dummy_workers import DummyJob

    sup = Supervisor(SupervisorSettings(worker_entry="tests.supervisor.dummy_workers:run_dummy", workers=1),
                     [DummyJob("a")])
    sup.start()
    deadline = time.monotonic() + 60
    try:
        while sup.snapshot().cameras["a"] is not WorkerState.RUNNING:
            assert time.monotonic() < deadline, sup.snapshot()
            sup.tick()
            time.sleep(0.05)
    finally:
        sup.stop(5)


def main() -> int:
    assert ctypes.CFUNCTYPE(ctypes.c_int)(lambda: 7)() == 7
    import asyncio

    import lxml.etree  # noqa: F401  (ONVIF SOAP)
    import onvif  # noqa: F401  (onvif-zeep-async: zeep, httpx, aiohttp)
    import paho.mqtt.client  # noqa: F401
    import pydantic  # noqa: F401
    import yaml  # noqa: F401

    with tempfile.TemporaryDirectory() as d:
        media(Path(d))
        storage(Path(d))
    asyncio.run(asyncio.sleep(0.01))  # the onvif thread's event loop: epoll, eventfd, self-pipe
    host()
    network()
    pool()
    print("SANDBOX-OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
