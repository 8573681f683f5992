"""Run a command under the unit's seccomp restrictions, emulated: `python3 sandbox.py UNIT -- CMD...`.

What the unit file asks systemd to enforce with seccomp, and nothing else: the SystemCallFilter= allow list
(@system-service minus @privileged and @resources, failing with EPERM), MemoryDenyWriteExecute=yes (no W+X
mappings, no mprotect to executable, no executable SysV shm) and RestrictAddressFamilies=. File-system, device
and user isolation are not emulated. Needs libseccomp's Python binding (Debian: python3-seccomp), so it runs
under the system's python3 and then execs the command, which inherits the filters.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import socket
import subprocess
import sys
from pathlib import Path

import seccomp  # type: ignore[import-not-found]  # Debian package python3-seccomp

SHM_EXEC = 0o100000


def expand(group: str, seen: set[str] | None = None) -> set[str]:
    """The syscalls of a systemd syscall group, nested groups included, as this systemd defines them."""
    seen = set() if seen is None else seen
    if group in seen:
        return set()
    seen.add(group)
    out = subprocess.run(["systemd-analyze", "syscall-filter", group], capture_output=True, text=True, check=True)
    names: set[str] = set()
    for line in out.stdout.splitlines()[1:]:
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        names |= expand(name, seen) if name.startswith("@") else {name}
    return names


def unit_settings(path: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def allowed_syscalls(filters: list[str]) -> set[str]:
    allowed: set[str] = set()
    for value in filters:
        deny = value.startswith("~")
        names: set[str] = set()
        for item in value.lstrip("~").split():
            names |= expand(item) if item.startswith("@") else {item}
        allowed = allowed - names if deny else allowed | names
    return allowed


def load(unit: str) -> None:
    s = unit_settings(unit)
    # 1. MemoryDenyWriteExecute=yes
    if s.get("MemoryDenyWriteExecute") == ["yes"]:
        mdwe = seccomp.SyscallFilter(seccomp.ALLOW)
        wx, x = mmap.PROT_WRITE | mmap.PROT_EXEC, mmap.PROT_EXEC
        mdwe.add_rule(seccomp.ERRNO(errno.EPERM), "mmap", seccomp.Arg(2, seccomp.MASKED_EQ, wx, wx))
        mdwe.add_rule(seccomp.ERRNO(errno.EPERM), "mprotect", seccomp.Arg(2, seccomp.MASKED_EQ, x, x))
        mdwe.add_rule(seccomp.ERRNO(errno.EPERM), "pkey_mprotect", seccomp.Arg(2, seccomp.MASKED_EQ, x, x))
        mdwe.add_rule(seccomp.ERRNO(errno.EPERM), "shmat", seccomp.Arg(2, seccomp.MASKED_EQ, SHM_EXEC, SHM_EXEC))
        mdwe.load()
    # 2. SystemCallFilter= (allow list) with SystemCallErrorNumber=, and 3. RestrictAddressFamilies= on socket()
    err = getattr(errno, s.get("SystemCallErrorNumber", ["EPERM"])[0])
    allow = seccomp.SyscallFilter(seccomp.ERRNO(err))
    families = [getattr(socket, f) for f in s.get("RestrictAddressFamilies", [""])[0].split()]
    for name in sorted(allowed_syscalls(s.get("SystemCallFilter", []))):
        if name == "socket" and families:
            for fam in families:
                allow.add_rule(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, fam))
            continue
        with contextlib.suppress(RuntimeError, ValueError):  # a syscall this architecture does not have
            allow.add_rule(seccomp.ALLOW, name)
    allow.load()


if __name__ == "__main__":
    split = sys.argv.index("--")
    load(sys.argv[1])
    os.execv(sys.argv[split + 1], sys.argv[split + 1:])
