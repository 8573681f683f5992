"""Where a demo keeps its files: `.demo/` in a checkout (the last few runs), else a temporary directory."""

from __future__ import annotations

from pathlib import Path

from agent.demo.runner import KEEP_RUNS, default_demo_dir


def test_runner_demo_dir_in_a_checkout_keeps_the_last_runs(tmp_path: Path) -> None:
    """In the project's checkout each run gets .demo/run-<time>-<unique>; only the newest KEEP_RUNS remain."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "matthan-agent"\n')
    made = [default_demo_dir(tmp_path) for _ in range(KEEP_RUNS + 2)]
    assert len(set(made)) == len(made)
    assert all(p.parent == tmp_path / ".demo" and p.name.startswith("run-") for p in made)
    left = sorted(p for p in (tmp_path / ".demo").iterdir())
    assert len(left) == KEEP_RUNS and made[-1] in left


def test_runner_demo_dir_elsewhere_is_a_new_temporary_directory(tmp_path: Path) -> None:
    """Outside a checkout nothing is written to the current directory."""
    path = default_demo_dir(tmp_path)
    try:
        assert path.is_dir() and tmp_path not in path.parents and not (tmp_path / ".demo").exists()
    finally:
        path.rmdir()
