"""The Vietnamese catalogue: chosen by the locale, complete for every marked string, and compiled from its .po."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from agent.i18n import LOCALE_DIR, language_from_env, translator
from agent.i18n.compile import PoError, build_mo, parse_po

PACKAGE = Path(__file__).resolve().parents[2] / "agent"
TRANSLATED_MODULES = [*sorted((PACKAGE / "health").glob("*.py")), PACKAGE / "cli" / "status.py",
                      *sorted((PACKAGE / "cli" / "doctor").glob("*.py"))]
PO = LOCALE_DIR / "vi" / "LC_MESSAGES" / "matthan.po"
MO = PO.with_suffix(".mo")


def marked_strings() -> set[str]:
    """Every literal passed to N_() or _() in the modules that print for a technician."""
    found = set()
    for path in TRANSLATED_MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("N_", "_")
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.add(node.args[0].value)
    return found


@pytest.mark.parametrize(
    ("env", "lang"),
    [
        ({"LANG": "vi_VN.UTF-8"}, "vi"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LC_ALL": "vi_VN", "LANG": "en_US.UTF-8"}, "vi"),
        ({"LANGUAGE": "en:vi", "LC_ALL": "vi_VN"}, "en"),
        ({"LANGUAGE": "vi"}, "vi"),
        ({"LC_MESSAGES": "vi_VN.UTF-8"}, "vi"),
        ({}, "en"),
        ({"LANG": "C"}, "en"),
    ],
)
def test_i18n_language_from_env(env: dict[str, str], lang: str) -> None:
    """LANGUAGE, LC_ALL, LC_MESSAGES, LANG are read in gettext's order; vi* means Vietnamese."""
    assert language_from_env(env) == lang


def test_i18n_every_marked_string_translated() -> None:
    """Every string marked in health/ and the status/doctor CLIs has a non-empty Vietnamese translation."""
    entries = parse_po(PO.read_text(encoding="utf-8"))
    missing = sorted(marked_strings() - set(entries))
    assert not missing, f"add to {PO.name}: {missing}"


def test_i18n_placeholders_match() -> None:
    """A translation keeps exactly the %-placeholders of its English original (else formatting would fail)."""
    pattern = re.compile(r"%(?:\(\w+\))?[-+ #0]*\d*(?:\.\d+)?[sdfr%]")
    for msgid, msgstr in parse_po(PO.read_text(encoding="utf-8")).items():
        if msgid:
            assert sorted(pattern.findall(msgid)) == sorted(pattern.findall(msgstr)), msgid


def test_i18n_mo_is_compiled_from_po() -> None:
    """The committed .mo is exactly what the .po compiles to (run `python -m agent.i18n.compile` after edits)."""
    assert MO.read_bytes() == build_mo(parse_po(PO.read_text(encoding="utf-8")))


def test_i18n_translator_reads_catalogue() -> None:
    """The vi translator translates; the English one is the identity."""
    assert translator("vi").gettext("camera is disabled") == "camera đã bị tắt theo dõi"
    assert translator("en").gettext("camera is disabled") == "camera is disabled"


def test_i18n_po_parser_rules(tmp_path: Path) -> None:
    """Continuation lines join, fuzzy and empty entries are left out, and junk is refused with its line."""
    text = ('msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
            'msgid "a"\n"b"\nmsgstr "x"\n"y"\n\n#, fuzzy\nmsgid "f"\nmsgstr "F"\n\nmsgid "e"\nmsgstr ""\n')
    entries = parse_po(text)
    assert entries["ab"] == "xy" and "f" not in entries and "e" not in entries
    with pytest.raises(PoError, match=":2:"):
        parse_po('msgid "a"\nmsgid_plural "b"\n')
