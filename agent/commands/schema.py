"""What a command message and its answer look like, and the strict parse that turns raw bytes into a request.

A request on `cmd/<name>` is a JSON object `{"req_id": str, "args": {...}, "expires": epoch-seconds}` of at most
64 KiB; `args` and `expires` are optional. The answer on `cmd_resp/<name>` is
`{"req_id", "ok", "error": {"code", "message"}}` or `{"req_id", "ok": true, "result": {...}}`.

Parsing never raises for anything a sender can put on the wire: every mistake becomes a `CommandResponse` with
one of the `ErrorCode`s below, so the station learns what was wrong instead of hearing nothing.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

MAX_PAYLOAD_BYTES = 64 * 1024  # the contract's limit; larger is refused before parsing (a Pi's RAM is small)
MAX_REQ_ID_CHARS = 128  # enough for a UUID plus a prefix; bounds the memory of the repeated-req_id cache


class ErrorCode(enum.StrEnum):
    """Why a command was not carried out. Part of the MQTT contract (docs/mqtt.md)."""

    BAD_JSON = "bad_json"  # not UTF-8 JSON
    TOO_LARGE = "too_large"  # more than MAX_PAYLOAD_BYTES
    BAD_REQUEST = "bad_request"  # JSON, but not the request envelope (no req_id, args not an object, ...)
    UNKNOWN_COMMAND = "unknown_command"
    INVALID_ARGS = "invalid_args"  # missing, unknown or wrongly typed arguments
    EXPIRED = "expired"  # arrived after its `expires` time
    UNKNOWN_CAMERA = "unknown_camera"
    UNAVAILABLE = "unavailable"  # this agent cannot do that command right now (not wired, shutting down)
    FAILED = "failed"  # the command ran and failed; the message says why


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """A request that passed the envelope checks. `args` is already validated for its command."""

    name: str
    req_id: str
    args: BaseModel
    expires: float | None = None


@dataclass(frozen=True, slots=True)
class CommandResponse:
    """The answer to one request. `req_id` is None when the request was too broken to carry one."""

    name: str
    req_id: str | None
    ok: bool
    error_code: ErrorCode | None = None
    error_message: str = ""
    result: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"req_id": self.req_id, "ok": self.ok}
        if self.ok:
            out["result"] = self.result
        else:
            out["error"] = {"code": str(self.error_code), "message": self.error_message}
        return out


def encode_response(response: CommandResponse) -> bytes:
    """The wire form of a response (to move into agent/mqtt/payloads.py as `command_response`)."""
    return json.dumps(response.to_dict(), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def fail(name: str, req_id: str | None, code: ErrorCode, message: str) -> CommandResponse:
    return CommandResponse(name=name, req_id=req_id, ok=False, error_code=code, error_message=message)


# -- per-command arguments: strict, unknown keys refused -------------------------------------------------------
class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class NoArgs(_Args):
    """Commands that take no arguments."""


CameraName = Field(min_length=1, max_length=64)


class SnapshotArgs(_Args):
    camera: str = CameraName


class SetCameraArgs(_Args):
    camera: str = CameraName
    enabled: StrictBool


ARG_MODELS: dict[str, type[_Args]] = {
    "rediscover": NoArgs,
    "snapshot": SnapshotArgs,
    "status": NoArgs,
    "reload_config": NoArgs,
    "rebirth": NoArgs,
    "set_camera": SetCameraArgs,
}
COMMANDS = tuple(ARG_MODELS)


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    req_id: str = Field(min_length=1, max_length=MAX_REQ_ID_CHARS)
    args: dict[str, Any] = Field(default_factory=dict)
    expires: float | int | None = None


def _first_error(exc: ValidationError) -> str:
    """One readable line from pydantic, naming the field; the offending value is not echoed back."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(message)"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def parse_request(name: str, payload: bytes, *, now: float) -> CommandRequest | CommandResponse:
    """Check one message on `cmd/<name>`. Returns the request, or the error response to send instead."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        message = f"message is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}"
        return fail(name, None, ErrorCode.TOO_LARGE, message)
    try:
        data = json.loads(payload.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return fail(name, None, ErrorCode.BAD_JSON, f"message is not valid UTF-8 JSON: {type(exc).__name__}")
    if not isinstance(data, dict):
        return fail(name, None, ErrorCode.BAD_REQUEST, f"message must be a JSON object, got {type(data).__name__}")
    raw_id = data.get("req_id")
    req_id = raw_id if isinstance(raw_id, str) and 0 < len(raw_id) <= MAX_REQ_ID_CHARS else None
    try:
        env = _Envelope.model_validate(data)
    except ValidationError as exc:
        return fail(name, req_id, ErrorCode.BAD_REQUEST, _first_error(exc))
    try:
        expires = None if env.expires is None else float(env.expires)
    except OverflowError:
        expires = math.inf
    if expires is not None and not math.isfinite(expires):
        return fail(name, env.req_id, ErrorCode.BAD_REQUEST, "expires must be a finite number of epoch seconds")
    model = ARG_MODELS.get(name)
    if model is None:
        known = ", ".join(COMMANDS)
        return fail(name, env.req_id, ErrorCode.UNKNOWN_COMMAND, f"unknown command {name[:64]!r}; known: {known}")
    if expires is not None and now > expires:
        late = now - expires
        return fail(name, env.req_id, ErrorCode.EXPIRED, f"request expired {late:.1f} s before it was handled")
    try:
        args = model.model_validate(env.args)
    except ValidationError as exc:
        return fail(name, env.req_id, ErrorCode.INVALID_ARGS, _first_error(exc))
    return CommandRequest(name=name, req_id=env.req_id, args=args, expires=expires)


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")
