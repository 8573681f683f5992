"""The first code a camera worker process runs: the same boring setup for every worker, in one place.

A worker is started with the `spawn` context, so it begins as a fresh interpreter: nothing the supervisor set up
(logging, secrets to redact, signal handlers) exists yet. `child_main` gives it a name in `ps`, faulthandler (so a
segfault in FFmpeg leaves a Python traceback in the journal), logging to stderr through the redacting formatter,
a stop event wired to the control pipe and to SIGTERM, and then calls the worker entry function.

Exit codes are the worker's only word after death, so they are fixed here: 0 stopped when asked, 78 (EX_CONFIG)
"my configuration is wrong, do not respawn me", 70 (EX_SOFTWARE) an uncaught exception, negative a signal.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import importlib
import logging
import multiprocessing
import os
import select
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from agent.logsetup import SECRETS, setup_logging
from agent.supervisor.channels import Heartbeat, ReportSink

log = logging.getLogger(__name__)

EX_OK = 0
EX_SOFTWARE = os.EX_SOFTWARE  # 70: the worker raised an exception it did not handle
EX_CONFIG = os.EX_CONFIG  # 78: the worker's configuration is wrong; respawning cannot help

_PR_SET_NAME = 15  # prctl option: the 15-character thread name `top` and `ps -o comm` show

WorkerEntry = Callable[[list[Any], ReportSink, Heartbeat, threading.Event], int | None]


class WorkerConfigError(Exception):
    """Raise from a worker entry when its camera specs cannot work; the worker exits 78 and is not respawned."""


def resolve_entry(dotted: str) -> WorkerEntry:
    """Import "package.module:function" and return the function; ValueError names what is wrong."""
    module_name, sep, attr = dotted.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"worker entry {dotted!r} must look like 'package.module:function'")
    module = importlib.import_module(module_name)
    try:
        entry = getattr(module, attr)
    except AttributeError:
        raise ValueError(f"worker entry {dotted!r}: module {module_name} has no {attr!r}") from None
    if not callable(entry):
        raise ValueError(f"worker entry {dotted!r} is not callable")
    return entry  # type: ignore[no-any-return]


def _set_title(title: str, short: str) -> None:
    """Make the worker recognisable in `ps` and `top`; setproctitle is used only if it happens to be installed."""
    multiprocessing.current_process().name = short
    try:
        import setproctitle  # type: ignore[import-not-found]  # optional, deliberately not a dependency
    except ImportError:
        pass
    else:
        setproctitle.setproctitle(title)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NAME, short.encode()[:15], 0, 0, 0)


def _start_stop_watcher(control: Connection, stop: threading.Event) -> None:
    """Set `stop` when the supervisor closes the control pipe or SIGTERM arrives.

    The SIGTERM handler itself does nothing: Python's C-level handler writes the signal number to a wake-up pipe,
    and this thread turns that into `stop.set()`. Setting a threading.Event inside a signal handler could deadlock
    on the event's own lock if the signal lands while the main thread holds it.
    """
    sig_r, sig_w = os.pipe()
    os.set_blocking(sig_w, False)
    signal.set_wakeup_fd(sig_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    # Ctrl-C in a terminal reaches the whole process group; the supervisor decides, and tells us through `stop`.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        ctl = control.fileno()
        while not stop.is_set():
            readable, _, _ = select.select([ctl, sig_r], [], [])
            if ctl in readable:
                stop.set()
            if sig_r in readable and signal.SIGTERM in os.read(sig_r, 64):
                log.info("SIGTERM received; stopping")
                stop.set()

    threading.Thread(target=watch, name="stop-watcher", daemon=True).start()


def child_main(
    entry_path: str,
    specs: Sequence[Any],
    sink: ReportSink,
    heartbeat: Heartbeat,
    control: Connection,
    title: str,
    short_name: str,
    log_level: int | str,
    secrets: frozenset[str],
) -> None:
    """Run one worker: setup, then `entry(specs, sink, heartbeat, stop)`; exit with a meaningful code.

    No PR_SET_PDEATHSIG: it fires when the *thread* that spawned us exits, a trap for a supervisor driven from a
    thread. The control pipe already reaches end-of-file when the supervisor process dies, however it dies.
    """
    _set_title(title, short_name)
    faulthandler.enable(file=sys.stderr, all_threads=True)
    setup_logging(log_level)
    SECRETS.add(secrets)
    stop = threading.Event()
    _start_stop_watcher(control, stop)
    sys.exit(_run_entry(entry_path, specs, sink, heartbeat, stop, short_name))


def _run_entry(
    entry_path: str,
    specs: Sequence[Any],
    sink: ReportSink,
    heartbeat: Heartbeat,
    stop: threading.Event,
    short_name: str,
) -> int:
    try:
        entry = resolve_entry(entry_path)
    except (ImportError, ValueError) as exc:
        # A missing module or a misspelt entry will be just as missing after a respawn.
        log.error("%s: cannot load worker entry %s: %s", short_name, entry_path, exc)
        return EX_CONFIG
    try:
        code = entry(list(specs), sink, heartbeat, stop)
    except WorkerConfigError as exc:
        log.error("%s: configuration error, not restarting: %s", short_name, exc)
        return EX_CONFIG
    except Exception:
        log.exception("%s: worker failed", short_name)
        return EX_SOFTWARE
    finally:
        for handler in logging.getLogger().handlers:
            handler.flush()
    return int(code or EX_OK)
