"""A tiny `msgfmt`: compile a `.po` catalogue into the `.mo` that Python's gettext reads.

Enough for our catalogue (msgid/msgstr with continuation lines, comments and flags; no plural forms, no
contexts), so building the package needs neither GNU gettext nor Babel. Entries marked `fuzzy` and empty
translations are left out, as msgfmt does.

    python -m agent.i18n.compile            # rebuild every catalogue under agent/i18n/locale
"""

from __future__ import annotations

import ast
import struct
import sys
from pathlib import Path

from agent.i18n import DOMAIN, LOCALE_DIR


class PoError(ValueError):
    """The .po file is malformed; the message names the line."""


def parse_po(text: str, name: str = "<po>") -> dict[str, str]:
    """msgid → msgstr for every translated, non-fuzzy entry (the header, msgid "", included)."""
    entries: dict[str, str] = {}
    msgid: list[str] | None = None
    msgstr: list[str] | None = None
    current: list[str] | None = None
    fuzzy = False
    pending_fuzzy = False

    def flush() -> None:
        nonlocal msgid, msgstr, fuzzy
        if msgid is not None and msgstr is not None:
            mid, mstr = "".join(msgid), "".join(msgstr)
            if mstr and not (fuzzy and mid):
                entries[mid] = mstr
        msgid = msgstr = None
        fuzzy = False

    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#,"):
            flush()
            pending_fuzzy = "fuzzy" in line
            continue
        if line.startswith("#"):
            continue
        if line.startswith("msgid "):
            flush()
            fuzzy, pending_fuzzy = pending_fuzzy, False
            msgid = [_literal(line[6:], name, n)]
            current = msgid
        elif line.startswith("msgstr "):
            if msgid is None:
                raise PoError(f"{name}:{n}: msgstr without msgid")
            msgstr = [_literal(line[7:], name, n)]
            current = msgstr
        elif line.startswith('"'):
            if current is None:
                raise PoError(f"{name}:{n}: continuation line outside an entry")
            current.append(_literal(line, name, n))
        else:
            raise PoError(f"{name}:{n}: unsupported line (plural forms and contexts are not supported)")
    flush()
    return entries


def _literal(token: str, name: str, n: int) -> str:
    token = token.strip()
    if not (token.startswith('"') and token.endswith('"')):
        raise PoError(f"{name}:{n}: expected a quoted string")
    try:
        value = ast.literal_eval(token)
    except (ValueError, SyntaxError):
        raise PoError(f"{name}:{n}: bad string escape") from None
    if not isinstance(value, str):
        raise PoError(f"{name}:{n}: expected a string")
    return value


def build_mo(entries: dict[str, str]) -> bytes:
    """The GNU .mo format: header, two sorted tables of (length, offset), then the NUL-terminated strings."""
    keys = sorted(entries)
    ids = [k.encode("utf-8") for k in keys]
    strs = [entries[k].encode("utf-8") for k in keys]
    count = len(keys)
    header_size = 7 * 4
    ids_table = header_size
    strs_table = ids_table + count * 8
    data_start = strs_table + count * 8
    id_offsets, str_offsets, blob = [], [], b""
    for s in ids:
        id_offsets.append((len(s), data_start + len(blob)))
        blob += s + b"\0"
    for s in strs:
        str_offsets.append((len(s), data_start + len(blob)))
        blob += s + b"\0"
    out = struct.pack("<7I", 0x950412DE, 0, count, ids_table, strs_table, 0, 0)
    out += b"".join(struct.pack("<2I", n, o) for n, o in id_offsets)
    out += b"".join(struct.pack("<2I", n, o) for n, o in str_offsets)
    return out + blob


def compile_file(po: Path, mo: Path | None = None) -> Path:
    mo = mo or po.with_suffix(".mo")
    mo.write_bytes(build_mo(parse_po(po.read_text(encoding="utf-8"), str(po))))
    return mo


def main(argv: list[str] | None = None) -> int:
    pos = sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    for po in pos:
        print(f"compiled {compile_file(po)}")
    return 0 if pos else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
