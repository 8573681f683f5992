"""Reading a YAML file while remembering the line of every key and list item.

Pydantic reports errors by location (`('cameras', 1, 'zones', 'cong')`), but an installer needs a line number.
So the document is first composed into PyYAML nodes (which carry `start_mark`), a map from key path to line is
built from them, and only then are Python values constructed from the same nodes.

The walk also refuses what PyYAML accepts silently: a key given twice (PyYAML keeps the last one, so a camera's
second `password:` would quietly win) and tabs in indentation (PyYAML's own message for those is cryptic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.config.issues import ConfigIssue, format_path

Loc = tuple[str | int, ...]

TAB_MESSAGE = "tabs are not allowed for indentation in YAML; use spaces"


@dataclass
class LineMap:
    """Key path -> 1-based line, for every mapping key and sequence item in the document."""

    # Keyed by parts as text: a node is either a mapping or a sequence, so "1" (key) and 1 (index) cannot clash,
    # and pydantic reports a non-text mapping key (`1: ...`) as the int 1.
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)

    def add(self, loc: Sequence[str | int], line: int) -> None:
        self.lines.setdefault(tuple(str(p) for p in loc), line)

    def line_for(self, loc: Sequence[str | int]) -> int | None:
        """Line of the longest prefix of `loc` present in the file (a missing key points at its parent)."""
        parts = tuple(str(p) for p in loc)
        for end in range(len(parts), -1, -1):
            line = self.lines.get(parts[:end])
            if line is not None:
                return line
        return None


@dataclass
class YamlSource:
    """A parsed file: its data (None when unusable), line map, and the problems found while reading it."""

    path: str
    data: Any = None
    lines: LineMap = field(default_factory=LineMap)
    issues: list[ConfigIssue] = field(default_factory=list)


def read_yaml(path: str | Path) -> YamlSource:
    """Read and parse `path`. Never raises for a user mistake: problems land in `YamlSource.issues`."""
    name = str(path)
    src = YamlSource(path=name)
    text = _read_text(Path(path), src)
    if text is None:
        return src
    tab_lines = [n for n, line in enumerate(text.splitlines(), 1) if "\t" in line[: len(line) - len(line.lstrip())]]
    if tab_lines:
        src.issues.extend(ConfigIssue(name, n, "", TAB_MESSAGE) for n in tab_lines)
        return src
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                src.issues.append(ConfigIssue(name, None, "", _EMPTY))
                return src
            _walk(node, (), src)
            src.data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        src.issues.append(_syntax_issue(name, exc))
        src.data = None
        return src
    except yaml.YAMLError as exc:
        src.issues.append(ConfigIssue(name, None, "", f"not valid YAML: {exc}"))
        src.data = None
        return src
    if src.data is None:
        src.issues.append(ConfigIssue(name, None, "", _EMPTY))
    elif not isinstance(src.data, dict):
        src.issues.append(
            ConfigIssue(name, node.start_mark.line + 1, "", "the top level must be a mapping of keys (site_id: ...)")
        )
        src.data = None
    return src


_EMPTY = "the file is empty (or holds only comments); start from config/agent.example.yaml"


def _read_text(path: Path, src: YamlSource) -> str | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        src.issues.append(ConfigIssue(src.path, None, "", "no such file; give the path of the agent's YAML file"))
        return None
    except IsADirectoryError:
        src.issues.append(ConfigIssue(src.path, None, "", "this is a directory, not a configuration file"))
        return None
    except PermissionError:
        src.issues.append(
            ConfigIssue(src.path, None, "", "permission denied; run as the agent's user or root, or fix the mode")
        )
        return None
    except OSError as exc:
        src.issues.append(ConfigIssue(src.path, None, "", f"cannot read the file: {exc.strerror or exc}"))
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        src.issues.append(ConfigIssue(src.path, line, "", "not UTF-8 text; save the file as UTF-8"))
        return None


def _syntax_issue(name: str, exc: yaml.MarkedYAMLError) -> ConfigIssue:
    mark = exc.problem_mark or exc.context_mark
    if exc.problem and "could not find expected ':'" in exc.problem and exc.context_mark is not None:
        mark = exc.context_mark  # PyYAML marks where it gave up (often the next line); the key began here
    unclosed = bool(exc.problem and "<stream end>" in exc.problem and exc.context_mark is not None)
    if unclosed:
        mark = exc.context_mark  # the bracket or quote that never closed, not the end of the file
    line = mark.line + 1 if mark is not None else None
    parts = [p for p in (exc.context, exc.problem) if p]
    detail = "; ".join(parts) if parts else "syntax error"
    hint = ""
    if unclosed:
        hint = " (a bracket or quote opened here is never closed?)"
    elif exc.problem and "mapping values are not allowed" in exc.problem:
        hint = " (a missing space after ':' or wrong indentation?)"
    elif exc.problem and "could not find expected ':'" in exc.problem:
        hint = " (a missing space after ':', or a line that is not 'key: value'?)"
    elif exc.problem and "expected <block end>" in exc.problem:
        hint = " (check the indentation of this line against the lines above)"
    return ConfigIssue(name, line, "", f"not valid YAML: {detail}{hint}")


def _walk(node: yaml.Node, loc: Loc, src: YamlSource) -> None:
    src.lines.add(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` merges; PyYAML's constructor resolves it, lines come from the anchor
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                src.issues.append(
                    ConfigIssue(
                        src.path,
                        line,
                        format_path((*loc, key)),
                        f"key '{key}' appears twice in this mapping (first on line {seen[key]}); keep only one",
                    )
                )
                continue
            seen[key] = line
            src.lines.add((*loc, key), line)
            _walk(value_node, (*loc, key), src)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            src.lines.add((*loc, index), item.start_mark.line + 1)
            _walk(item, (*loc, index), src)
