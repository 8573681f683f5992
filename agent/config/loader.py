"""Loading the agent's YAML file into an `AgentConfig`, or a `ConfigError` listing every problem with its line."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from agent.config.errors import issues_from_validation
from agent.config.issues import ConfigError, ConfigIssue, format_path
from agent.config.schema import AgentConfig, duplicate_identities
from agent.config.secrets import SecretFields
from agent.config.yamlsource import LineMap, read_yaml
from agent.logsetup import SECRETS, SecretRegistry

log = logging.getLogger(__name__)


def load_config(path: str | os.PathLike[str], *, registry: SecretRegistry = SECRETS) -> AgentConfig:
    """Read, validate and resolve the config at `path`; raise ConfigError with every problem found.

    Secrets are read from their files and variables here, and registered with `registry` so that the logging
    redactor masks them on every line from now on.
    """
    name = os.fspath(path)
    source = read_yaml(name)
    issues: list[ConfigIssue] = list(source.issues)
    if source.data is None:
        raise ConfigError(issues)
    config = validate_data(source.data, file=name, lines=source.lines, base_dir=Path(name).parent, issues=issues)
    if issues or config is None:
        raise ConfigError(issues)
    registry.add(iter_secrets(config))
    _warn_if_exposed(Path(name), config)
    return config


def validate_data(
    data: dict[str, Any],
    *,
    file: str = "<config>",
    lines: LineMap | None = None,
    base_dir: Path = Path("."),
    issues: list[ConfigIssue] | None = None,
) -> AgentConfig | None:
    """Validate already-parsed data; problems are appended to `issues` (a new list if None) and None returned."""
    sink = issues if issues is not None else []
    try:
        return AgentConfig.model_validate(data, context={"base_dir": str(base_dir)})
    except ValidationError as exc:
        found = issues_from_validation(exc, AgentConfig, file, lines or LineMap())
        # The model's own check may have run too (when every camera entry was valid); report each key once.
        reported = {issue.path for issue in found}
        found += [i for i in _raw_duplicates(data, file, lines or LineMap()) if i.path not in reported]
        sink.extend(found)
        return None


def _raw_duplicates(data: dict[str, Any], file: str, lines: LineMap) -> list[ConfigIssue]:
    cameras = data.get("cameras")
    if not isinstance(cameras, list):
        return []
    entries = [c if isinstance(c, dict) else {} for c in cameras]
    return [
        ConfigIssue(file, lines.line_for(("cameras", *loc)), format_path(("cameras", *loc)), message)
        for loc, message in duplicate_identities(entries)
    ]


def iter_secrets(config: AgentConfig) -> Iterator[str]:
    """Every password the config holds: broker, credential sets, cameras, and passwords inside camera URLs."""
    holders: list[SecretFields] = [config.mqtt, *config.discovery.credentials]
    holders += [c.credentials for c in config.cameras if c.credentials is not None]
    for holder in holders:
        secret = holder.secret()
        if secret:
            yield secret
    for camera in config.cameras:
        if camera.url:
            password = urlsplit(camera.url).password
            if password:
                yield password


def _has_inline_password(config: AgentConfig) -> bool:
    holders: list[SecretFields] = [config.mqtt, *config.discovery.credentials]
    holders += [c.credentials for c in config.cameras if c.credentials is not None]
    return any(h.password is not None for h in holders) or any(
        c.url and urlsplit(c.url).password for c in config.cameras
    )


def _warn_if_exposed(path: Path, config: AgentConfig) -> None:
    # A password written in the config file is only as private as the file itself.
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o077 and _has_inline_password(config):
        log.warning(
            "%s holds a password and is readable by group or others (mode %o); run: chmod 600 %s "
            "(or move passwords to password_file)",
            path,
            mode,
            path,
        )
