"""Commands: the envelope, every command's arguments and operation, error codes, and fuzzed malformed input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.commands import (
    COMMANDS,
    MAX_PAYLOAD_BYTES,
    CommandDispatcher,
    CommandFailed,
    CommandOps,
    CommandResponse,
    ErrorCode,
    encode_response,
)

NOW = 1_800_000_000.0


class Daemon:
    """A stand-in daemon that records every operation it is asked to do."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.cameras = {"cong-lang", "cho"}

    def ops(self, **overrides: Any) -> CommandOps:
        base: dict[str, Any] = {
            "camera_ids": lambda: self.cameras,
            "rediscover": lambda: self._rec("rediscover", result={"started": True}),
            "snapshot": lambda cam: self._rec("snapshot", cam, result={"msg_id": "a-1-7"}),
            "status": lambda: self._rec("status", result={"cameras": {"cho": "online"}}),
            "reload_config": lambda: self._rec("reload_config", result={"cameras": 2}),
            "rebirth": lambda: self._rec("rebirth", result={"republished": 5}),
            "set_camera": lambda cam, en: self._rec("set_camera", cam, en, result={"enabled": en}),
        }
        base.update(overrides)
        return CommandOps(**base)

    def _rec(self, *call: Any, result: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(call)
        return result


def msg(req_id: str = "r1", args: Any = None, expires: Any = None, **extra: Any) -> bytes:
    body: dict[str, Any] = {"req_id": req_id}
    if args is not None:
        body["args"] = args
    if expires is not None:
        body["expires"] = expires
    body.update(extra)
    return json.dumps(body).encode()


@pytest.fixture
def daemon() -> Daemon:
    return Daemon()


@pytest.fixture
def dispatcher(daemon: Daemon) -> CommandDispatcher:
    return CommandDispatcher(daemon.ops(), clock=lambda: NOW)


@pytest.mark.parametrize(
    ("name", "args", "call"),
    [
        ("rediscover", None, ("rediscover",)),
        ("snapshot", {"camera": "cho"}, ("snapshot", "cho")),
        ("status", {}, ("status",)),
        ("reload_config", None, ("reload_config",)),
        ("rebirth", None, ("rebirth",)),
        ("set_camera", {"camera": "cong-lang", "enabled": False}, ("set_camera", "cong-lang", False)),
    ],
)
def test_commands_each_runs_its_operation(
    dispatcher: CommandDispatcher, daemon: Daemon, name: str, args: Any, call: tuple[Any, ...]
) -> None:
    """Every command in the contract calls its operation once and answers ok with the operation's result."""
    resp = dispatcher.handle(name, msg("id-" + name, args, expires=NOW + 30))
    assert resp is not None and resp.ok and resp.req_id == "id-" + name
    assert daemon.calls == [call]
    assert resp.result
    wire = json.loads(encode_response(resp))
    assert wire["ok"] is True and wire["req_id"] == "id-" + name and "error" not in wire
    assert set(COMMANDS) >= {name}


@pytest.mark.parametrize(
    ("name", "payload", "code"),
    [
        ("status", b"{not json", ErrorCode.BAD_JSON),
        ("status", b"\xff\xfe", ErrorCode.BAD_JSON),
        ("status", b"NaN", ErrorCode.BAD_JSON),
        ("status", b"[1, 2]", ErrorCode.BAD_REQUEST),
        ("status", b'{"args": {}}', ErrorCode.BAD_REQUEST),
        ("status", b'{"req_id": 5}', ErrorCode.BAD_REQUEST),
        ("status", b'{"req_id": ""}', ErrorCode.BAD_REQUEST),
        ("status", b'{"req_id": "a", "args": []}', ErrorCode.BAD_REQUEST),
        ("status", b'{"req_id": "a", "expires": "soon"}', ErrorCode.BAD_REQUEST),
        ("status", b'{"req_id": "a", "colour": "red"}', ErrorCode.BAD_REQUEST),
        ("status", b'{"req_id": "a", "expires": ' + b"9" * 400 + b"}", ErrorCode.BAD_REQUEST),
        ("status", b'{"req_id": "a", "expires": true}', ErrorCode.BAD_REQUEST),
        ("status", b"[" * 60000, ErrorCode.BAD_JSON),
        ("reboot", b'{"req_id": "a"}', ErrorCode.UNKNOWN_COMMAND),
        ("status", b'{"req_id": "a", "expires": 1000}', ErrorCode.EXPIRED),
        ("snapshot", b'{"req_id": "a"}', ErrorCode.INVALID_ARGS),
        ("snapshot", b'{"req_id": "a", "args": {"camera": 7}}', ErrorCode.INVALID_ARGS),
        ("snapshot", b'{"req_id": "a", "args": {"camera": "cho", "x": 1}}', ErrorCode.INVALID_ARGS),
        ("set_camera", b'{"req_id": "a", "args": {"camera": "cho", "enabled": "yes"}}', ErrorCode.INVALID_ARGS),
        ("set_camera", b'{"req_id": "a", "args": {"camera": "cho", "enabled": 1}}', ErrorCode.INVALID_ARGS),
        ("status", b'{"req_id": "a", "args": {"verbose": true}}', ErrorCode.INVALID_ARGS),
        ("snapshot", b'{"req_id": "a", "args": {"camera": "nowhere"}}', ErrorCode.UNKNOWN_CAMERA),
    ],
)
def test_commands_malformed_get_error_code(
    dispatcher: CommandDispatcher, daemon: Daemon, name: str, payload: bytes, code: ErrorCode
) -> None:
    """Each kind of mistake is answered with its own error code and a message, and runs nothing."""
    resp = dispatcher.handle(name, payload)
    assert resp is not None and not resp.ok and resp.error_code is code and resp.error_message
    assert daemon.calls == []
    wire = json.loads(encode_response(resp))
    assert wire["error"]["code"] == code.value and "result" not in wire


def test_commands_req_id_echoed_when_readable(dispatcher: CommandDispatcher) -> None:
    """An invalid request still carries its req_id back when the req_id itself was fine."""
    resp = dispatcher.handle("snapshot", msg("keep-me", {"camera": 3}))
    assert resp is not None and resp.req_id == "keep-me"


def test_commands_too_large_refused_before_parsing(dispatcher: CommandDispatcher) -> None:
    """A message over 64 KiB is refused as too_large, even when it is valid JSON."""
    payload = msg("big", padding="x" * MAX_PAYLOAD_BYTES)
    resp = dispatcher.handle("status", payload)
    assert resp is not None and resp.error_code is ErrorCode.TOO_LARGE and resp.req_id is None


def test_commands_at_limit_accepted(dispatcher: CommandDispatcher) -> None:
    """A message of exactly 64 KiB is parsed (the limit is inclusive)."""
    head = msg("edge", {"camera": "cho"})
    payload = head[:-1] + b" " * (MAX_PAYLOAD_BYTES - len(head)) + b"}"
    assert len(payload) == MAX_PAYLOAD_BYTES
    resp = dispatcher.handle("snapshot", payload)
    assert resp is not None and resp.ok


def test_commands_retained_ignored(dispatcher: CommandDispatcher, daemon: Daemon) -> None:
    """A retained command message is neither run nor answered."""
    assert dispatcher.handle("rebirth", msg("ret"), retained=True) is None
    assert daemon.calls == [] and dispatcher.counters["ignored_retained"] == 1


def test_commands_repeated_req_id_answered_once(dispatcher: CommandDispatcher, daemon: Daemon) -> None:
    """The same req_id delivered twice (QoS 1 redelivery) runs and answers once."""
    first = dispatcher.handle("rediscover", msg("dup"))
    second = dispatcher.handle("rediscover", msg("dup"))
    assert first is not None and first.ok and second is None
    assert daemon.calls == [("rediscover",)]
    other = dispatcher.handle("rediscover", msg("dup2"))
    assert other is not None and other.ok


def test_commands_repeat_memory_is_bounded(daemon: Daemon) -> None:
    """Only the last N req_ids are remembered, so memory stays bounded."""
    d = CommandDispatcher(daemon.ops(), clock=lambda: NOW, remember=3)
    for i in range(5):
        d.handle("status", msg(f"r{i}"))
    assert d.handle("status", msg("r0")) is not None  # forgotten, so run again
    assert d.handle("status", msg("r4")) is None


def test_commands_not_expired_runs(dispatcher: CommandDispatcher) -> None:
    """A request whose `expires` is in the future runs."""
    resp = dispatcher.handle("status", msg("fresh", expires=NOW + 0.5))
    assert resp is not None and resp.ok


def test_commands_operation_failure_reported(daemon: Daemon) -> None:
    """CommandFailed from an operation becomes that error code; other exceptions become `failed`."""

    def refuse(camera: str) -> dict[str, Any]:
        raise CommandFailed(ErrorCode.FAILED, "camera did not answer the snapshot request")

    def crash() -> dict[str, Any]:
        raise RuntimeError("bug")

    d = CommandDispatcher(daemon.ops(snapshot=refuse, rebirth=crash), clock=lambda: NOW)
    a = d.handle("snapshot", msg("a", {"camera": "cho"}))
    assert a is not None and a.error_code is ErrorCode.FAILED and "snapshot" in a.error_message
    b = d.handle("rebirth", msg("b"))
    assert b is not None and b.error_code is ErrorCode.FAILED and "internal error" in b.error_message


def test_commands_missing_operation_unavailable(daemon: Daemon) -> None:
    """An operation the daemon did not provide is answered `unavailable`."""
    d = CommandDispatcher(daemon.ops(rediscover=None), clock=lambda: NOW)
    resp = d.handle("rediscover", msg("x"))
    assert resp is not None and resp.error_code is ErrorCode.UNAVAILABLE


def test_commands_response_shape() -> None:
    """The wire form has exactly req_id, ok and one of error/result."""
    ok = json.loads(encode_response(CommandResponse("status", "1", True, result={"a": 1})))
    bad = json.loads(encode_response(CommandResponse("status", None, False, ErrorCode.EXPIRED, "late")))
    assert ok == {"req_id": "1", "ok": True, "result": {"a": 1}}
    assert bad == {"req_id": None, "ok": False, "error": {"code": "expired", "message": "late"}}


# -- fuzzing: anything a sender can put on the wire gets an answer, never an exception -------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "req_id": json_values | st.text(min_size=1, max_size=200),
        "args": json_values | st.fixed_dictionaries({}, optional={"camera": json_values, "enabled": json_values}),
        "expires": json_values,
        "extra": json_values,
    },
).map(lambda d: json.dumps(d).encode())
raw_bytes = st.binary(max_size=300)
names = st.sampled_from([*COMMANDS, "reboot", "", "status/../x", "ß"])


def _check_answer(resp: CommandResponse | None) -> None:
    assert resp is not None
    wire = json.loads(encode_response(resp))
    assert set(wire) in ({"req_id", "ok", "result"}, {"req_id", "ok", "error"})
    if not resp.ok:
        assert wire["error"]["code"] in {c.value for c in ErrorCode} and wire["error"]["message"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names, payload=envelopes | raw_bytes)
def test_commands_fuzzed_messages_always_answered(name: str, payload: bytes) -> None:
    """150 fuzzed messages (random envelopes and random bytes) each get a well-formed answer, never an exception."""
    daemon = Daemon()
    d = CommandDispatcher(daemon.ops(), clock=lambda: NOW)
    _check_answer(d.handle(name, payload))


@settings(max_examples=60, deadline=None)
@given(payload=raw_bytes)
def test_commands_fuzzed_bytes_never_run_anything(payload: bytes) -> None:
    """60 random byte strings are refused as malformed and never reach an operation."""
    daemon = Daemon()
    d = CommandDispatcher(daemon.ops(), clock=lambda: NOW)
    resp = d.handle("set_camera", payload)
    _check_answer(resp)
    assert resp is not None and not resp.ok and daemon.calls == []
