"""A private LAN made of Linux network namespaces, so multicast discovery runs for real and touches nothing else.

WS-Discovery sends to 239.255.255.250:3702; on the machine's real interfaces that would reach whatever LAN the
machine sits on. Inside a pair of namespaces joined by a veth cable it reaches only our simulated cameras:

    agent namespace  [lan0 198.18.0.2/24] ===veth=== [cam0 198.18.0.11, .12, ...]  camera namespace

198.18.0.0/15 is the range RFC 2544 reserves for testing network devices. Nothing outside the namespaces routes
to it here, and the namespaces have no route out, so a bug cannot leak traffic onto a real network.

Creating namespaces needs root (`ip netns add`). Code runs inside one either as a child process
(`lan.popen(ns, argv)`) or in-process on a dedicated thread that joined the namespace (`lan.call(ns, fn)`); the
network namespace is per thread on Linux, and a socket keeps the namespace it was created in.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import ipaddress
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
NAME_PREFIX = "mt-"  # every namespace we create starts with this, so stale ones can be found and removed
SUBNET = ipaddress.ip_network("198.18.0.0/24")
AGENT_IP = "198.18.0.2"
FIRST_CAMERA_HOST = 11
AGENT_IF = "lan0"
CAMERA_IF = "cam0"


class NetnsUnavailable(RuntimeError):
    """Namespaces cannot be created here (not root, or no `ip`); tests that need them skip with this reason."""


def netns_unavailable_reason() -> str | None:
    """None when we can create namespaces, else a plain reason."""
    if os.geteuid() != 0:
        return "creating network namespaces needs root (ip netns add); run the tests as root"
    if shutil.which("ip") is None:
        return "the `ip` command is missing (Debian package iproute2)"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and proc.returncode != 0:
        raise NetnsUnavailable(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_namespaces() -> list[str]:
    """Delete namespaces left by a test run that died (their creator pid is gone). Returns their names."""
    removed = []
    if not os.path.isdir(NETNS_DIR):
        return removed
    for name in os.listdir(NETNS_DIR):
        if not name.startswith(NAME_PREFIX):
            continue
        try:
            pid = int(name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if not _pid_alive(pid):
            _ip("netns", "del", name, check=False)
            removed.append(name)
    return removed


def enter_netns_current_thread(ns: str) -> None:
    """Move the calling thread (only) into namespace `ns`."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(os.path.join(NETNS_DIR, ns), os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsUnavailable(f"setns({ns}) failed: {os.strerror(err)}")
    finally:
        os.close(fd)


@dataclass
class Lan:
    """Two namespaces joined by a veth pair. Use as a context manager; `close()` removes everything."""

    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    agent_ns: str = ""
    camera_ns: str = ""
    camera_ips: list[str] = field(default_factory=list)
    _procs: list[subprocess.Popen[Any]] = field(default_factory=list)
    _created: list[str] = field(default_factory=list)
    _executors: dict[str, concurrent.futures.ThreadPoolExecutor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        base = f"{NAME_PREFIX}{os.getpid()}-{self.tag}"
        self.agent_ns = self.agent_ns or f"{base}-agent"
        self.camera_ns = self.camera_ns or f"{base}-cams"

    # -- lifecycle -----------------------------------------------------------------------------------------
    def open(self) -> Lan:
        reason = netns_unavailable_reason()
        if reason:
            raise NetnsUnavailable(reason)
        try:
            for ns in (self.agent_ns, self.camera_ns):
                _ip("netns", "add", ns)
                self._created.append(ns)
                self.ns_ip(ns, "link", "set", "lo", "up")
            # Temporary names in the root namespace must be unique and <= 15 characters.
            a_tmp, c_tmp = f"mta{self.tag}", f"mtc{self.tag}"
            _ip("link", "add", a_tmp, "type", "veth", "peer", "name", c_tmp)
            _ip("link", "set", a_tmp, "netns", self.agent_ns)
            _ip("link", "set", c_tmp, "netns", self.camera_ns)
            self.ns_ip(self.agent_ns, "link", "set", a_tmp, "name", AGENT_IF)
            self.ns_ip(self.camera_ns, "link", "set", c_tmp, "name", CAMERA_IF)
            self.ns_ip(self.agent_ns, "addr", "add", f"{AGENT_IP}/{SUBNET.prefixlen}", "dev", AGENT_IF)
            for ns, dev in ((self.agent_ns, AGENT_IF), (self.camera_ns, CAMERA_IF)):
                self.ns_ip(ns, "link", "set", dev, "up")
                # Multicast (WS-Discovery) leaves through the LAN interface even without IP_MULTICAST_IF.
                self.ns_ip(ns, "route", "add", "224.0.0.0/4", "dev", dev)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self._procs.clear()
        for executor in self._executors.values():
            executor.shutdown(wait=True, cancel_futures=True)
        self._executors.clear()
        for ns in reversed(self._created):
            _ip("netns", "del", ns, check=False)
        self._created.clear()

    def __enter__(self) -> Lan:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- addresses -----------------------------------------------------------------------------------------
    def add_camera_ip(self, ip: str | None = None) -> str:
        """Give the camera side one more address (a new camera, or a camera's new DHCP lease)."""
        if ip is None:
            used = set(self.camera_ips)
            host = FIRST_CAMERA_HOST
            while str(SUBNET[host]) in used:
                host += 1
            ip = str(SUBNET[host])
        if ipaddress.ip_address(ip) not in SUBNET:
            raise ValueError(f"{ip} is outside the private test subnet {SUBNET}")
        self.ns_ip(self.camera_ns, "addr", "add", f"{ip}/{SUBNET.prefixlen}", "dev", CAMERA_IF)
        self.camera_ips.append(ip)
        return ip

    def remove_camera_ip(self, ip: str) -> None:
        self.ns_ip(self.camera_ns, "addr", "del", f"{ip}/{SUBNET.prefixlen}", "dev", CAMERA_IF)
        self.camera_ips.remove(ip)

    # -- running things inside -----------------------------------------------------------------------------
    def ns_ip(self, ns: str, *args: str) -> subprocess.CompletedProcess[str]:
        return _ip("-n", ns, *args)

    def argv(self, ns: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]

    def run(self, ns: str, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        kwargs.setdefault("timeout", 60)
        return subprocess.run(self.argv(ns, argv), **kwargs)

    def popen(self, ns: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a process inside `ns`; it is terminated (then killed) by `close()`."""
        proc = subprocess.Popen(self.argv(ns, argv), **kwargs)
        self._procs.append(proc)
        return proc

    def call(self, ns: str, fn: Callable[..., T], *args: Any, timeout: float = 120.0, **kwargs: Any) -> T:
        """Run `fn` on a fresh thread that has joined namespace `ns`, and return its result or raise its error.

        Sockets that `fn` creates stay in `ns`, so an asyncio loop started inside `fn` works entirely there.
        """
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                enter_netns_current_thread(ns)
                box["result"] = fn(*args, **kwargs)
            except BaseException as exc:
                box["error"] = exc

        thread = threading.Thread(target=target, name=f"netns-{ns}", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"function in namespace {ns} still running after {timeout} s")
        if "error" in box:
            raise box["error"]
        return box["result"]

    def run_in(self, ns: str, fn: Callable[..., T], *args: Any, timeout: float = 120.0) -> T:
        """Run `fn` on this LAN's long-lived thread for `ns` and return its result.

        Use this (not `call`) to start processes that must outlive the call: a child started with
        PR_SET_PDEATHSIG is killed when the *thread* that created it exits, and `call`'s thread exits at once.
        Children inherit the creating thread's namespace, so what `fn` starts lives in `ns`.
        """
        executor = self._executors.get(ns)
        if executor is None:
            executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"netns-{ns}", initializer=enter_netns_current_thread,
                initargs=(ns,))
            self._executors[ns] = executor
        return executor.submit(fn, *args).result(timeout)

    def start_thread(self, ns: str, fn: Callable[..., Any], *args: Any, name: str = "") -> threading.Thread:
        """Start a daemon thread that joins `ns` and runs `fn(*args)`; the caller stops it through its own means."""

        def target() -> None:
            enter_netns_current_thread(ns)
            fn(*args)

        thread = threading.Thread(target=target, name=name or f"netns-{ns}", daemon=True)
        thread.start()
        return thread
