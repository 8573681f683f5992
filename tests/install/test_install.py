"""scripts/install.sh, staged with `--root DIR`: files, modes, idempotence, uninstall and purge.

Every test runs the installer from a copy of the checkout into a staging root in tmp, so nothing here touches
this machine's /etc, /opt, users or systemd: in staging mode the installer only records those actions.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from agent import __version__

REPO = Path(__file__).resolve().parents[2]
APP = "matthan-agent"
MINIMAL_CONFIG = "site_id: test-site\nmqtt:\n  host: 127.0.0.1\ncameras: []\n"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the files the installer reads (a minimal example config if the real one is not there yet)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("README.md", "pyproject.toml"):
        shutil.copy2(REPO / name, src / name)
    for name in ("scripts", "systemd", "agent"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (src / "config").mkdir()
    example = REPO / "config" / "agent.example.yaml"
    if example.is_file():
        shutil.copy2(example, src / "config" / "agent.example.yaml")
    else:
        (src / "config" / "agent.example.yaml").write_text(MINIMAL_CONFIG)
    return src


def install(checkout: Path, root: Path, *args: str, skip_venv: bool = True,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MATTHAN_INSTALL_SKIP_VENV": "1" if skip_venv else "0"}
    out = subprocess.run(["bash", str(checkout / "scripts" / "install.sh"), "--root", str(root), *args],
                         capture_output=True, text=True, env=env, timeout=1500)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def actions(root: Path) -> list[str]:
    return (root / "var" / "lib" / f"{APP}-install" / "actions.log").read_text().splitlines()


def tree(root: Path) -> dict[str, tuple[int, str]]:
    """Every staged path -> (mode, content hash or link target), except the installer's own action record."""
    out: dict[str, tuple[int, str]] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if rel.startswith(f"var/lib/{APP}-install"):
            continue
        if path.is_symlink():
            out[rel] = (mode(path), os.readlink(path))
        elif path.is_file():
            out[rel] = (mode(path), hashlib.sha256(path.read_bytes()).hexdigest())
        else:
            out[rel] = (mode(path), "dir")
    return out


def test_install_places_files_with_modes(checkout: Path, tmp_path: Path) -> None:
    """Unit, config (0640, from the example), state dir, program link land where systemd expects them."""
    root = tmp_path / "root"
    out = install(checkout, root)
    unit = root / "etc/systemd/system" / f"{APP}.service"
    conf = root / "etc" / APP / "agent.yaml"
    assert unit.read_text() == (checkout / "systemd" / f"{APP}.service").read_text() and mode(unit) == 0o644
    assert conf.read_text() == (checkout / "config" / "agent.example.yaml").read_text() and mode(conf) == 0o640
    assert mode(root / "etc" / APP) == 0o750 and mode(root / "var/lib" / APP) == 0o750
    assert os.readlink(root / "usr/local/bin" / APP) == f"/opt/{APP}/venv/bin/{APP}"
    assert (root / "opt" / APP / "README.md").is_file()
    done = actions(root)
    assert any(a.startswith("useradd --system") and a.endswith(" matthan") for a in done)
    assert f"chown root:matthan {conf}" in done
    assert done[-2:] == ["systemctl daemon-reload", f"systemctl enable --now {APP}"]
    for hint in (f"systemctl status {APP}", f"journalctl -u {APP} -f", f"{APP} status", f"{APP} doctor"):
        assert hint in out.stdout


def test_install_second_run_is_idempotent_and_keeps_config(checkout: Path, tmp_path: Path) -> None:
    """Running again changes nothing but refreshed files, and never overwrites an edited agent.yaml."""
    root = tmp_path / "root"
    install(checkout, root)
    conf = root / "etc" / APP / "agent.yaml"
    conf.write_text("# edited by the technician\nsite_id: xa-khac\n")
    before = tree(root)
    out = install(checkout, root)
    assert tree(root) == before
    assert conf.read_text().startswith("# edited by the technician")
    assert "keeping the existing" in out.stderr


def test_install_no_start_only_enables(checkout: Path, tmp_path: Path) -> None:
    """--no-start enables the unit for the next boot without starting it."""
    root = tmp_path / "root"
    install(checkout, root, "--no-start")
    assert actions(root)[-1] == f"systemctl enable {APP}"


def test_install_uninstall_keeps_config_and_data(checkout: Path, tmp_path: Path) -> None:
    """--uninstall removes program and unit but keeps configuration, state and the user."""
    root = tmp_path / "root"
    install(checkout, root)
    (root / "var/lib" / APP / "outbox.sqlite").write_bytes(b"events not yet sent")
    out = install(checkout, root, "--uninstall")
    assert not (root / "etc/systemd/system" / f"{APP}.service").exists()
    assert not (root / "opt" / APP).exists() and not (root / "usr/local/bin" / APP).is_symlink()
    assert (root / "etc" / APP / "agent.yaml").is_file()
    assert (root / "var/lib" / APP / "outbox.sqlite").read_bytes() == b"events not yet sent"
    done = actions(root)
    assert f"systemctl disable --now {APP}" in done and not any(a.startswith("userdel") for a in done)
    assert "--purge" in out.stderr


def test_install_purge_removes_config_data_and_user(checkout: Path, tmp_path: Path) -> None:
    """--uninstall --purge removes configuration, state and the user too."""
    root = tmp_path / "root"
    install(checkout, root)
    install(checkout, root, "--uninstall", "--purge")
    assert not (root / "etc" / APP).exists() and not (root / "var/lib" / APP).exists()
    assert "userdel matthan" in actions(root)


def test_install_rejects_bad_arguments(checkout: Path, tmp_path: Path) -> None:
    """Unknown options, --purge without --uninstall and a staging root of / are refused with a reason."""
    for args, words in ((["--frobnicate"], "unknown argument"), (["--purge"], "--uninstall")):
        out = install(checkout, tmp_path / "root", *args, check=False)
        assert out.returncode != 0 and words in out.stderr
    out = subprocess.run(["bash", str(checkout / "scripts" / "install.sh"), "--root", "/"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0 and "real system" in out.stderr


def test_install_script_is_clean_shell() -> None:
    """`bash -n` passes, and shellcheck too when it is installed."""
    script = REPO / "scripts" / "install.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    if shutil.which("shellcheck"):
        out = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_install_builds_working_venv(checkout: Path, tmp_path: Path) -> None:
    """Without --no-venv the staged venv is built from the checkout and `matthan-agent --version` runs."""
    root = tmp_path / "root"
    install(checkout, root, "--no-start", skip_venv=False)
    binary = root / "opt" / APP / "venv" / "bin" / APP
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and __version__ in out.stdout
    assert not (checkout / "build").exists() and not list(checkout.glob("*.egg-info")), "checkout littered"
