"""Passwords given inline, in a file, or in an environment variable, resolved once when the config is loaded.

Resolving at load time means `check-config` catches an unreadable file or an unset variable before the daemon
starts, with the line that named it. Resolved values are held in `SecretStr`, so no repr, log line or crash dump of
a config model shows them; the loader also registers them with the logging redactor.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import PlainSerializer, PlainValidator, SecretStr, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from agent.config.fields import Strict, cross_field, field

log = logging.getLogger(__name__)

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Files longer than this are certainly not a password file (a misplaced certificate or log, say).
MAX_SECRET_FILE_BYTES = 4096


@dataclass(frozen=True, slots=True)
class FileSecret:
    """A password read from `path` at load time."""

    path: Path
    value: SecretStr


@dataclass(frozen=True, slots=True)
class EnvSecret:
    """A password read from the environment variable `name` at load time."""

    name: str
    value: SecretStr


def base_dir(info: ValidationInfo) -> Path:
    """Relative paths in the config are relative to the config file's directory (the loader passes it)."""
    context = info.context or {}
    return Path(context.get("base_dir", "."))


def _inline(value: Any) -> SecretStr:
    if isinstance(value, SecretStr):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError(
            "secret_type", "must be text; put the password in quotes, e.g. password: \"123456\""
        )
    if not value:
        raise PydanticCustomError("secret_empty", "is empty; give the password or remove the key")
    return SecretStr(value)


def _from_file(value: Any, info: ValidationInfo) -> FileSecret:
    if isinstance(value, FileSecret):
        return value
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError("secret_path", "must be the path of a file holding only the password")
    path = Path(value)
    if not path.is_absolute():
        path = base_dir(info) / path
    try:
        mode = path.stat().st_mode
        raw = path.read_bytes()[: MAX_SECRET_FILE_BYTES + 1]
    except FileNotFoundError:
        raise PydanticCustomError("secret_file", "file {path} does not exist", {"path": str(path)}) from None
    except IsADirectoryError:
        raise PydanticCustomError("secret_file", "{path} is a directory, not a file", {"path": str(path)}) from None
    except PermissionError:
        raise PydanticCustomError(
            "secret_file",
            "cannot read {path} (permission denied); make it readable by the agent's user (chmod 600, chown)",
            {"path": str(path)},
        ) from None
    except OSError as exc:
        raise PydanticCustomError(
            "secret_file", "cannot read {path}: {why}", {"path": str(path), "why": exc.strerror or str(exc)}
        ) from None
    if len(raw) > MAX_SECRET_FILE_BYTES:
        raise PydanticCustomError("secret_file", "{path} is too big to be a password file", {"path": str(path)})
    try:
        text = raw.decode("utf-8").strip("\r\n")
    except UnicodeDecodeError:
        raise PydanticCustomError("secret_file", "{path} is not UTF-8 text", {"path": str(path)}) from None
    if not text:
        raise PydanticCustomError("secret_file", "{path} is empty; write the password into it", {"path": str(path)})
    if stat.S_IMODE(mode) & 0o077:
        log.warning(
            "password file %s is readable by group or others (mode %o); run: chmod 600 %s",
            path,
            stat.S_IMODE(mode),
            path,
        )
    return FileSecret(path=path, value=SecretStr(text))


def _from_env(value: Any) -> EnvSecret:
    if isinstance(value, EnvSecret):
        return value
    if not isinstance(value, str) or not ENV_NAME.match(value):
        raise PydanticCustomError(
            "secret_env", "must be an environment variable name such as MATTHAN_MQTT_PASSWORD (letters, digits, _)"
        )
    text = os.environ.get(value)
    if text is None:
        raise PydanticCustomError(
            "secret_env",
            "environment variable {name} is not set; set it (systemd: EnvironmentFile=) or use password_file",
            {"name": value},
        )
    if not text:
        raise PydanticCustomError("secret_env", "environment variable {name} is empty", {"name": value})
    return EnvSecret(name=value, value=SecretStr(text))


# Dumps show where a password comes from (a path, a variable name), never the password itself.
MASKED = "**********"
InlineSecret = Annotated[SecretStr, PlainValidator(_inline), PlainSerializer(lambda s: MASKED, return_type=str)]
PasswordFile = Annotated[
    FileSecret, PlainValidator(_from_file), PlainSerializer(lambda s: str(s.path), return_type=str)
]
PasswordEnv = Annotated[EnvSecret, PlainValidator(_from_env), PlainSerializer(lambda s: s.name, return_type=str)]

SECRET_KEYS = ("password", "password_file", "password_env")


class SecretFields(Strict):
    """A user name and a password from exactly one of three places (or none)."""

    username: str | None = field(None, "user name", type_name="text")
    password: InlineSecret | None = field(
        None, "password written in this file (quote it); prefer password_file or password_env", type_name="text"
    )
    password_file: PasswordFile | None = field(
        None, "file holding only the password (chmod 600); relative to this file's directory", type_name="path"
    )
    password_env: PasswordEnv | None = field(
        None, "name of an environment variable holding the password", type_name="env name"
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [k for k in SECRET_KEYS if getattr(self, k) is not None]
        if len(given) > 1:
            found = " and ".join(given)
            message = f"give only one of password, password_file, password_env (found {found})"
            raise cross_field([((given[1],), message)])
        return self

    def secret(self) -> str | None:
        """The resolved password, wherever it came from; None when no password is configured."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            return self.password_file.value.get_secret_value()
        if self.password_env is not None:
            return self.password_env.value.get_secret_value()
        return None
