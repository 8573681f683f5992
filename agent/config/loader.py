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
    config, found = _validate(source.data, name, source.lines, Path(name).parent)
    issues += found
    if issues or config is None:
        raise ConfigError(issues)
    registry.add(iter_secrets(config))
    _warn_if_exposed(Path(name), config)
    return config


def validate_data(data: dict[str, Any], *, file: str = "<config>", base_dir: Path = Path(".")) -> AgentConfig:
    """Validate already-parsed data (no line numbers available); raise ConfigError listing every problem.

    Unlike `load_config`, this does not register secrets with the logging redactor.
    """
    config, issues = _validate(data, file, LineMap(), base_dir)
    if config is None:
        raise ConfigError(issues)
    return config


def _validate(
    data: dict[str, Any], file: str, lines: LineMap, base_dir: Path
) -> tuple[AgentConfig | None, list[ConfigIssue]]:
    try:
        return AgentConfig.model_validate(data, context={"base_dir": str(base_dir)}), []
    except ValidationError as exc:
        found = issues_from_validation(exc, AgentConfig, file, lines)
        # The model's own check may have run too (when every camera entry was valid); report each key once.
        reported = {issue.path for issue in found}
        found += [i for i in _raw_duplicates(data, file, lines) if i.path not in reported]
        return None, found


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
