"""Broken configuration files: each exits 78 through the real CLI, naming the line and the key path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.config.conftest import MINIMAL, CheckResult, line_of

ROOT = Path(__file__).resolve().parents[2]

CAMERA = MINIMAL + "cameras:\n  - name: cho\n"

# (id, yaml, text on the offending line (None: no line), key path, words the message must contain)
CASES: list[tuple[str, str, str | None, str, str]] = [
    ("misspelt_key", MINIMAL + "  pasword: x\n", "pasword", "mqtt.pasword",
     "unknown key 'pasword', did you mean 'password'?"),
    ("misspelt_camera_key", CAMERA + "    sensitivty: 0.5\n", "sensitivty", "cameras[0].sensitivty",
     "did you mean 'sensitivity'?"),
    ("misspelt_section", MINIMAL + "dicovery:\n  enabled: false\n", "dicovery", "dicovery",
     "did you mean 'discovery'?"),
    ("unknown_top_level_key", MINIMAL + "zzz: 1\n", "zzz", "zzz", "allowed keys here: agent_id, cameras"),
    ("wrong_type", MINIMAL + "  keepalive: often\n", "keepalive", "mqtt.keepalive",
     "must be a whole number from 5 to 1200, got 'often'"),
    ("bool_type", MINIMAL + "  station_ack: maybe\n", "station_ack", "mqtt.station_ack", "must be true or false"),
    ("out_of_range", CAMERA + "    sensitivity: 1.5\n", "sensitivity", "cameras[0].sensitivity",
     "out of range; allowed: from 0 to 1, got 1.5"),
    ("port_out_of_range", MINIMAL + "  port: 70000\n", "port", "mqtt.port", "from 1 to 65535"),
    ("missing_site_id", MINIMAL.replace("site_id: xa-tan-phu\n", ""), "agent_id", "site_id",
     "required key is missing"),
    ("missing_host", "site_id: a\nmqtt:\n  port: 1883\n", "mqtt:", "mqtt.host", "required key is missing"),
    ("bad_enum", MINIMAL + "motion:\n  decode_mode: fast\n", "decode_mode", "motion.decode_mode",
     "'fast' is not allowed; allowed: 'full', 'keyframe' or 'adaptive'"),
    ("polygon_two_points", CAMERA + "    masks:\n      - [[0, 0], [1, 0]]\n", "[[0, 0], [1, 0]]",
     "cameras[0].masks[0]", "a polygon needs at least 3 points"),
    ("polygon_out_of_range", CAMERA + "    zones:\n      gate: [[0, 0], [1.2, 0], [1, 1]]\n", "gate:",
     "cameras[0].zones.gate[1][0]", "point coordinates must be from 0 to 1"),
    ("polygon_zero_area", CAMERA + "    masks:\n      - [[0, 0], [0.5, 0.5], [1, 1]]\n", "[0.5, 0.5]",
     "cameras[0].masks[0]", "the polygon has no area"),
    ("polygon_bow_tie", CAMERA + "    masks:\n      - [[0, 0], [1, 1], [1, 0], [0, 1]]\n", "[1, 0], [0, 1]",
     "cameras[0].masks[0]", "edges cross"),
    ("duplicate_uuid_spelling", MINIMAL + "cameras:\n  - uuid: urn:uuid:6B1F0C2E-8A4D-4C1E-9F3A-2D5E7B9C1A00\n"
     "  - uuid: 6b1f0c2e-8a4d-4c1e-9f3a-2d5e7b9c1a00\n    sensitivity: 5\n", "  - uuid: 6b1f", "cameras[1].uuid",
     "already used by cameras[0]"),
    ("polygon_point_not_pair", CAMERA + "    masks:\n      - [[0, 0], [1], [1, 1]]\n", "[1]",
     "cameras[0].masks[0][1]", "a point must be a pair [x, y]"),
    ("invalid_yaml", MINIMAL + "cameras: [ {name: cho\n", "cameras", "", "not valid YAML"),
    ("bad_indentation", MINIMAL + " port: 3\n", "port", "", "check the indentation"),
    ("tab_indentation", MINIMAL + "\tport: 3\n", "port", "",
     "tabs are not allowed for indentation in YAML; use spaces"),
    ("duplicate_key", MINIMAL + "  host: 10.0.0.2\n", "10.0.0.2", "mqtt.host",
     "key 'host' appears twice in this mapping (first on line 4)"),
    ("duplicate_zone", CAMERA + "    zones:\n      a: [[0, 0], [1, 0], [1, 1]]\n      a: [[0, 0], [1, 0], [0, 1]]\n",
     "[0, 1]]", "cameras[0].zones.a", "appears twice"),
    ("duplicate_camera_name", CAMERA + "  - ip: 10.0.0.9\n    name: cho\n", "    name: cho", "cameras[1].name",
     "name 'cho' is already used by cameras[0]"),
    ("duplicate_camera_ip", MINIMAL + "cameras:\n  - ip: 10.0.0.9\n  - name: b\n    ip: 10.0.0.9\n", "    ip: 10",
     "cameras[1].ip", "already used"),
    ("camera_without_identity", MINIMAL + "cameras:\n  - display_name: Chợ\n", "display_name", "cameras[0]",
     "needs at least one of name, uuid or ip"),
    ("bad_uuid", CAMERA + "    uuid: urn:uuid:1234\n", "uuid", "cameras[0].uuid", "not an ONVIF endpoint UUID"),
    ("bad_ip", CAMERA + "    ip: 192.168.1.300\n", "ip:", "cameras[0].ip", "is not an IPv4 address"),
    ("bad_camera_name", MINIMAL + "cameras:\n  - name: Chợ Tân Phú\n", "name:", "cameras[0].name",
     "lower-case letters a-z"),
    ("url_without_name", MINIMAL + "cameras:\n  - ip: 10.0.0.9\n    url: rtsp://10.0.0.9/s\n", "url:",
     "cameras[0].url", "needs a name"),
    ("url_bad_scheme", CAMERA + "    url: ftp://10.0.0.9/s\n", "url:", "cameras[0].url", "unsupported URL scheme"),
    ("subnet_too_large", MINIMAL + "discovery:\n  scan_subnets:\n    - 10.0.0.0/16\n", "10.0.0.0/16",
     "discovery.scan_subnets[0]", "at most /24 is allowed"),
    ("subnet_host_bits", MINIMAL + "discovery:\n  scan_subnets: [192.168.1.5/24]\n", "192.168.1.5",
     "discovery.scan_subnets[0]", "did you mean 192.168.1.0/24?"),
    ("insecure_without_tls", MINIMAL + "  tls:\n    enabled: false\n    insecure: true\n", "insecure",
     "mqtt.tls.insecure", "insecure only applies when TLS is enabled"),
    ("durations", MINIMAL + "motion:\n  min_motion_s: 20\n  max_event_s: 10\n", "min_motion_s",
     "motion.min_motion_s", "must be shorter than max_event_s"),
    ("host_with_scheme", "site_id: a\nmqtt:\n  host: mqtt://broker\n", "host", "mqtt.host", "is not a host name"),
    ("topic_prefix_wildcard", MINIMAL + "  topic_prefix: matthan/#\n", "topic_prefix", "mqtt.topic_prefix",
     "wildcards"),
    ("topic_prefix_placeholder", MINIMAL + "  topic_prefix: x/{camera}\n", "topic_prefix", "mqtt.topic_prefix",
     "unknown placeholder {camera}"),
    ("unset_password_env", MINIMAL + "  password_env: MATTHAN_TEST_SURELY_UNSET_VAR\n", "password_env",
     "mqtt.password_env", "environment variable MATTHAN_TEST_SURELY_UNSET_VAR is not set"),
    ("missing_password_file", MINIMAL + "  password_file: nowhere.pass\n", "password_file", "mqtt.password_file",
     "does not exist"),
    ("two_password_sources", MINIMAL + "  password: abcd\n  password_file: nowhere.pass\n", "password_file",
     "mqtt.password_file", "does not exist"),
    ("numeric_password", MINIMAL + "  password: 123456\n", "password", "mqtt.password", "put the password in quotes"),
    ("bad_size", MINIMAL + "storage:\n  outbox_max_bytes: lots\n", "outbox_max_bytes", "storage.outbox_max_bytes",
     "must be a size such as 256MiB"),
    ("size_too_small", MINIMAL + "storage:\n  outbox_max_bytes: 1KiB\n", "outbox_max_bytes",
     "storage.outbox_max_bytes", "is too small; allowed: 1MiB or more"),
    ("not_a_mapping", MINIMAL + "motion: 5\n", "motion", "motion", "must be a mapping"),
    ("empty_tls", MINIMAL + "  tls:\n", "tls", "mqtt.tls", "write 'tls: {}' for TLS"),
    ("non_text_key", MINIMAL + "1: 2\n", "1: 2", "[1]", "key 1 is not text"),
    ("top_level_list", "- a\n- b\n", "- a", "", "the top level must be a mapping"),
]


@pytest.mark.parametrize(("yaml_text", "line_text", "path", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_config_exits_78_with_line_and_path(write_config, check_config, yaml_text, line_text, path, words):
    """Each broken file exits 78 and prints FILE:LINE: path: message for the right line and key."""
    monkey_env = os.environ.pop("MATTHAN_TEST_SURELY_UNSET_VAR", None)
    assert monkey_env is None
    config = write_config(yaml_text)
    result = check_config(config)
    assert result.code == 78, result.err
    line = line_of(yaml_text, line_text) if line_text is not None else None
    prefix = f"{config}:{line}: " if line is not None else f"{config}: "
    expected = prefix + (f"{path}: " if path else "")
    matching = [row for row in result.err.splitlines() if row.startswith(expected)]
    assert matching, f"no line starting with {expected!r} in:\n{result.err}"
    assert any(words in row for row in matching), result.err


def test_broken_not_utf8(write_config, check_config) -> None:
    """A file saved in a legacy encoding is refused with the line of the first bad byte."""
    path = write_config("")
    path.write_bytes(b"site_id: x\nmqtt:\n  host: Ch\xe1\n")
    result = check_config(path)
    assert result.code == 78
    assert f"{path}:3: not UTF-8 text" in result.err


def test_broken_empty_section_means_defaults(write_config, check_config) -> None:
    """A section whose lines are all commented out (null) takes its defaults instead of failing."""
    result = check_config(write_config(MINIMAL + "discovery:\n  # enabled: true\ncameras:\nmotion:\n"))
    assert result.code == 0, result.err


def test_broken_empty_file_exits_78(write_config, check_config):
    """An empty (or comments-only) file is refused with a pointer to the example."""
    result = check_config(write_config("# nothing yet\n"))
    assert result.code == 78
    assert "the file is empty" in result.err and "agent.example.yaml" in result.err


def test_broken_missing_file_exits_78(tmp_path, check_config):
    """A file that does not exist is named plainly."""
    result = check_config(tmp_path / "absent.yaml")
    assert result.code == 78
    assert f"{tmp_path / 'absent.yaml'}: no such file" in result.err


def test_broken_directory_instead_of_file(tmp_path, check_config):
    """A directory given as the config file is refused, not crashed on."""
    result = check_config(tmp_path)
    assert result.code == 78
    assert "is a directory" in result.err


NOBODY = 65534  # the unprivileged user root's checks run as, so that file modes apply


@pytest.fixture
def unprivileged(tmp_path: Path, check_config) -> Iterator[tuple[Path, Callable[[Path], CheckResult]]]:
    """A directory, and a check-config runner for a user that file modes bind: this user, or nobody under root.

    Root reads any file, so under root check-config runs in a subprocess as nobody (setpriv, util-linux), on files in
    a directory nobody can traverse (pytest's own tmp_path sits under a 0700 directory).
    """
    if os.geteuid() != 0:
        yield tmp_path, check_config
        return
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root reads any file, and setpriv (util-linux) is missing to run check-config as nobody")
    work = Path(tempfile.mkdtemp(prefix="matthan-nobody-"))
    work.chmod(0o755)

    def run(config: Path) -> CheckResult:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1"}
        out = subprocess.run([setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable,
                              "-m", "agent", "check-config", str(config)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        return CheckResult(out.returncode, out.stdout, out.stderr)

    try:
        yield work, run
    finally:
        shutil.rmtree(work)


def test_broken_unreadable_config_file(unprivileged) -> None:
    """A config file the agent's user cannot read says 'permission denied'."""
    folder, check = unprivileged
    path = folder / "agent.yaml"
    path.write_text(MINIMAL)
    path.chmod(0)
    result = check(path)
    assert result.code == 78, result.err
    assert f"{path}: permission denied" in result.err


def test_broken_unreadable_password_file(unprivileged) -> None:
    """A password file that exists but cannot be read is an error on the password_file line."""
    folder, check = unprivileged
    secret = folder / "mqtt.pass"
    secret.write_text("hunter22\n")
    secret.chmod(0)
    text = MINIMAL + f"  password_file: {secret}\n"
    config = folder / "agent.yaml"
    config.write_text(text)
    config.chmod(0o644)  # readable by the unprivileged user; only the password file is not
    result = check(config)
    assert result.code == 78, result.err
    assert f"{config}:{line_of(text, 'password_file')}: mqtt.password_file: cannot read" in result.err
    assert "permission denied" in result.err and "hunter22" not in result.err


def test_broken_password_file_is_directory(write_config, check_config, tmp_path):
    """A password_file that points at a directory is refused with its line (works even as root)."""
    (tmp_path / "secrets").mkdir()
    text = MINIMAL + "  password_file: secrets\n"
    result = check_config(write_config(text))
    assert result.code == 78
    assert f":{line_of(text, 'password_file')}: mqtt.password_file: " in result.err
    assert "is a directory" in result.err


def test_broken_two_password_sources(write_config, check_config, tmp_path):
    """Giving both password and password_env names the second one and lists the choice."""
    (tmp_path / "mqtt.pass").write_text("hunter22")
    text = MINIMAL + "  password: abcdef\n  password_file: mqtt.pass\n"
    result = check_config(write_config(text))
    assert result.code == 78
    assert f":{line_of(text, 'password_file')}: mqtt.password_file: give only one of password" in result.err


def test_broken_cert_without_key(write_config, check_config, tmp_path):
    """A client certificate without its key is refused on the cert_file line; relative paths resolve."""
    (tmp_path / "agent.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    text = MINIMAL + "  tls:\n    cert_file: agent.crt\n"
    result = check_config(write_config(text))
    assert result.code == 78
    assert f":{line_of(text, 'cert_file')}: mqtt.tls.cert_file: cert_file needs key_file" in result.err


def test_broken_missing_ca_file(write_config, check_config):
    """A CA file that does not exist is caught before the daemon tries to connect."""
    text = MINIMAL + "  tls:\n    ca_file: /nonexistent/ca.pem\n"
    result = check_config(write_config(text))
    assert result.code == 78
    assert f":{line_of(text, 'ca_file')}: mqtt.tls.ca_file: file /nonexistent/ca.pem does not exist" in result.err


def test_broken_numeric_password_is_not_echoed(write_config, check_config):
    """A wrong-typed password is reported without printing its value."""
    result = check_config(write_config(MINIMAL + "  password: 98765432\n"))
    assert result.code == 78
    assert "98765432" not in result.err


def test_broken_every_error_is_printed(write_config, check_config):
    """Several mistakes in one file are all reported, in line order, with a count."""
    text = (
        "site_id: Xa Tan Phu\n"
        "mqtt:\n"
        "  host: 127.0.0.1\n"
        "  keepalive: 1\n"
        "  pasword: x\n"
        "cameras:\n"
        "  - name: cho\n"
        "    sensitivity: 7\n"
        "    masks:\n"
        "      - [[0, 0], [1, 1]]\n"
        "  - name: cho\n"
        "motion:\n"
        "  osd_mask: maybe\n"
        "health:\n"
        "  interval_s: 1\n"
    )
    result = check_config(write_config(text))
    assert result.code == 78
    expected = [
        (1, "site_id"),
        (4, "mqtt.keepalive"),
        (5, "mqtt.pasword"),
        (8, "cameras[0].sensitivity"),
        (10, "cameras[0].masks[0]"),
        (11, "cameras[1].name"),
        (13, "motion.osd_mask"),
        (15, "health.interval_s"),
    ]
    rows = [row for row in result.err.splitlines() if row.startswith(str(Path(result.err.split(":")[0])))]
    found = [(int(row.split(":")[1]), row.split(": ")[1]) for row in rows]
    assert found == expected, result.err
    assert "8 problems" in result.err
