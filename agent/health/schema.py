"""The documented shape of the health payload's `host`, `outbox` and `cameras` objects, and a validator for it.

`docs/mqtt.md` (schema `matthan/health/1`) defers the keys inside `host` and `cameras` to this module and lists
those of `outbox` (`agent.outbox.OutboxStats.as_dict`). Every key is always present; a value the board cannot
measure is `null`, never 0.

host:
| key | type | meaning |
|---|---|---|
| `cpu_pct` | number or null | whole-machine CPU % since the previous sample (null on the first sample) |
| `cpu_count` | integer or null | logical CPUs |
| `agent_cpu_pct` | number | the supervisor process's CPU % (100 = one core) |
| `workers` | object | per camera-worker pid (string): `{cpu_pct: number or null, rss_bytes}`, or null if it exited |
| `load` | [1, 5, 15 min] or null | load averages |
| `memory` | object | `total_bytes`, `available_bytes`, `used_pct` |
| `disk` | object or null | state dir: `path`, `free_bytes`, `total_bytes`, `free_pct` |
| `temperature_c` | number or null | SoC temperature |
| `throttling` | object or null | Raspberry Pi only: `raw` (hex) and booleans named in `metrics.THROTTLE_BITS` |
| `wifi` | object or null | `interface`, `link_quality` (of 70 on most drivers), `signal_dbm` |

outbox:
| key | type | meaning |
|---|---|---|
| `depth`, `bytes` | integer | rows waiting (sent but unconfirmed ones included) and their accounted bytes |
| `oldest_age_s` | number or null | age of the oldest waiting row (null when empty) |
| `dead_letters`, `evicted_rows` | integer | refused by the broker / dropped because the outbox was full, in total |
| `evicted_by_class` | object | rows dropped per class (`health`, `snapshot`, ...): integer each |
| `unconfirmed` | integer | sent rows kept until the station's acknowledgement |
| `files_set_aside` | integer | corrupt outbox files moved aside by this process |

cameras, per camera id:
| key | type | meaning |
|---|---|---|
| `state`, `reason`, `since` | string, string, number | as on the camera's status topic (null before the first status) |
| `fps_in`, `fps_analysed` | number or null | frames (packets in keyframe mode) received / analysed per second |
| `decode_mode` | string or null | `full`, `keyframe` or `adaptive` |
| `last_frame_age_s` | number or null | seconds since the last new picture |
| `reconnects_1h`, `stalls_1h`, `events_1h` | integer | in the last hour |
| `onvif_errors` | integer | ONVIF request failures counted by discovery/events for this camera |
"""

from __future__ import annotations

from typing import Any

from agent.health.metrics import THROTTLE_BITS

_NUM = (int, float)


def _is_num(v: Any) -> bool:
    return isinstance(v, _NUM) and not isinstance(v, bool)


def _check(errors: list[str], where: str, ok: bool, what: str) -> None:
    if not ok:
        errors.append(f"{where}: {what}")


def validate_host(host: Any) -> list[str]:
    e: list[str] = []
    if not isinstance(host, dict):
        return ["host: must be an object"]
    expected = {"cpu_pct", "cpu_count", "agent_cpu_pct", "workers", "load", "memory", "disk", "temperature_c",
                "throttling", "wifi"}
    _check(e, "host", set(host) == expected, f"keys must be {sorted(expected)}, got {sorted(host)}")
    _check(e, "host.cpu_pct", host.get("cpu_pct") is None or _is_num(host.get("cpu_pct")), "must be a number or null")
    _check(e, "host.agent_cpu_pct", _is_num(host.get("agent_cpu_pct")), "must be a number")
    _check(e, "host.cpu_count", host.get("cpu_count") is None or isinstance(host.get("cpu_count"), int), "integer")
    _check(e, "host.temperature_c", host.get("temperature_c") is None or _is_num(host.get("temperature_c")),
           "must be a number or null")
    load = host.get("load")
    _check(e, "host.load", load is None or (isinstance(load, list) and len(load) == 3 and all(map(_is_num, load))),
           "must be three numbers or null")
    workers = host.get("workers")
    if not isinstance(workers, dict):
        e.append("host.workers: must be an object")
    else:
        for pid, w in workers.items():
            _check(e, f"host.workers.{pid}", pid.isdigit(), "keys are pids")
            _check(e, f"host.workers.{pid}", w is None or (isinstance(w, dict) and set(w) == {"cpu_pct", "rss_bytes"}
                                                             and (w["cpu_pct"] is None or _is_num(w["cpu_pct"]))
                                                             and isinstance(w["rss_bytes"], int)),
                   "must be {cpu_pct, rss_bytes} or null")
    mem = host.get("memory")
    _check(e, "host.memory", isinstance(mem, dict) and set(mem) == {"total_bytes", "available_bytes", "used_pct"},
           "must be {total_bytes, available_bytes, used_pct}")
    disk = host.get("disk")
    _check(e, "host.disk", disk is None or (isinstance(disk, dict)
                                           and set(disk) == {"path", "free_bytes", "total_bytes", "free_pct"}),
           "must be {path, free_bytes, total_bytes, free_pct} or null")
    thr = host.get("throttling")
    names = {"raw", *THROTTLE_BITS.values()}
    _check(e, "host.throttling", thr is None or (isinstance(thr, dict) and set(thr) == names
                                                 and all(isinstance(thr[n], bool) for n in THROTTLE_BITS.values())),
           f"must be {sorted(names)} or null")
    wifi = host.get("wifi")
    _check(e, "host.wifi", wifi is None or (isinstance(wifi, dict)
                                           and set(wifi) == {"interface", "link_quality", "signal_dbm"}),
           "must be {interface, link_quality, signal_dbm} or null")
    return e


OUTBOX_COUNTS = ("depth", "bytes", "dead_letters", "evicted_rows", "unconfirmed", "files_set_aside")
OUTBOX_KEYS = {*OUTBOX_COUNTS, "oldest_age_s", "evicted_by_class"}


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def validate_outbox(outbox: Any) -> list[str]:
    if not isinstance(outbox, dict):
        return ["outbox: must be an object"]
    e: list[str] = []
    _check(e, "outbox", set(outbox) == OUTBOX_KEYS, f"keys must be {sorted(OUTBOX_KEYS)}, got {sorted(outbox)}")
    for k in OUTBOX_COUNTS:
        _check(e, f"outbox.{k}", _is_count(outbox.get(k)), "must be an int >= 0")
    age = outbox.get("oldest_age_s")
    _check(e, "outbox.oldest_age_s", age is None or (_is_num(age) and age >= 0), "must be a number >= 0 or null")
    by_class = outbox.get("evicted_by_class")
    _check(e, "outbox.evicted_by_class", isinstance(by_class, dict) and all(
        isinstance(k, str) and _is_count(v) for k, v in by_class.items()), "must map class names to ints >= 0")
    return e


CAMERA_KEYS = {"state", "reason", "since", "fps_in", "fps_analysed", "decode_mode", "last_frame_age_s",
               "reconnects_1h", "stalls_1h", "events_1h", "onvif_errors"}


def validate_cameras(cameras: Any) -> list[str]:
    if not isinstance(cameras, dict):
        return ["cameras: must be an object"]
    e: list[str] = []
    for cam, c in cameras.items():
        where = f"cameras.{cam}"
        if not isinstance(c, dict):
            e.append(f"{where}: must be an object")
            continue
        _check(e, where, set(c) == CAMERA_KEYS, f"keys must be {sorted(CAMERA_KEYS)}, got {sorted(c)}")
        _check(e, f"{where}.state", c.get("state") in (None, "online", "degraded", "offline"), "unknown state")
        _check(e, f"{where}.decode_mode", c.get("decode_mode") in (None, "full", "keyframe", "adaptive"),
               "unknown decode mode")
        for k in ("since", "fps_in", "fps_analysed", "last_frame_age_s"):
            _check(e, f"{where}.{k}", c.get(k) is None or _is_num(c.get(k)), "must be a number or null")
        for k in ("reconnects_1h", "stalls_1h", "events_1h", "onvif_errors"):
            _check(e, f"{where}.{k}", _is_count(c.get(k)), "must be an int >= 0")
    return e


def validate_health(doc: Any) -> list[str]:
    """Every problem with a decoded health payload (the whole `matthan/health/1` object); [] when valid."""
    if not isinstance(doc, dict):
        return ["health: must be an object"]
    e: list[str] = []
    for k in ("ts", "uptime_s"):
        _check(e, k, _is_num(doc.get(k)), "must be a number")
    for k in ("version", "boot_id"):
        _check(e, k, isinstance(doc.get(k), str), "must be a string")
    return [*e, *validate_host(doc.get("host")), *validate_outbox(doc.get("outbox")),
            *validate_cameras(doc.get("cameras"))]
