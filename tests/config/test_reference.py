"""docs/configuration.md is generated from the models and must be regenerated when they change."""

from __future__ import annotations

from pathlib import Path

from agent.config.reference import main, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_reference_doc_is_up_to_date() -> None:
    """The committed reference equals what the generator renders now."""
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is out of date; run: python -m agent.config.reference --write docs/configuration.md"
    )


def test_reference_documents_every_field() -> None:
    """Every field of every section has a description in the reference (no empty cells)."""
    text = render()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) > 80
    assert all(not line.rstrip().endswith("|  |") for line in rows)


def test_reference_check_flags_stale_file(tmp_path: Path) -> None:
    """`--check` exits 1 for a stale file and 0 for a fresh one."""
    stale = tmp_path / "configuration.md"
    stale.write_text("old\n")
    assert main(["--check", str(stale)]) == 1
    assert main(["--write", str(stale)]) == 0
    assert main(["--check", str(stale)]) == 0
