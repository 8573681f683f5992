# shellcheck shell=bash
# Shared set-up for scripts/test.sh and scripts/demo.sh: Debian packages, then the project venv.
# Sourced, not run. Idempotent: a second run installs nothing and takes a second.

APT_PACKAGES=(
  mosquitto mosquitto-clients iproute2 openssl ffmpeg
  python3-venv python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
  gstreamer1.0-plugins-bad gstreamer1.0-libav python3-seccomp shellcheck
)

die() { echo "error: $*" >&2; exit 1; }

ensure_apt_packages() {
  local missing=() p
  command -v dpkg-query >/dev/null 2>&1 || die "this script needs a Debian-based system (Debian 12, Raspberry Pi OS bookworm, Ubuntu 22.04+)"
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    echo "==> installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed; check the network and /etc/apt/sources.list"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || die "apt-get install failed for: ${missing[*]}"
  else
    echo "error: missing Debian packages. Run this once as root, then run this script again:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
}

pick_python() {
  local c
  for c in python3.11 python3.12 python3.13 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  die "Python 3.11 or newer is needed (Raspberry Pi OS bookworm and Debian 12 ship it as python3)"
}

ensure_venv() {
  # $1: pip extras, e.g. "[test]" or "". A venv installed with the test extras also serves a plain request, so
  # switching between demo.sh and test.sh does not reinstall (an offline Pi could not fetch the build backend).
  local extras="$1" py stamp hash have
  py=$(pick_python)
  if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv with $py" >&2
    "$py" -m venv .venv || die "could not create .venv (on Debian: apt-get install python3-venv)"
  fi
  stamp=.venv/.matthan-installed
  hash="$(sha256sum pyproject.toml | cut -d' ' -f1)"
  have="$(cat "$stamp" 2>/dev/null || true)"
  if [ "$have" = "$hash$extras" ] || { [ -z "$extras" ] && [ "$have" = "${hash}[test]" ]; }; then
    return 0
  fi
  echo "==> installing matthan-agent$extras into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null || die "pip upgrade failed"
  .venv/bin/python -m pip install -q -e ".$extras" || die "pip install failed (see above)"
  echo "$hash$extras" > "$stamp"
}
