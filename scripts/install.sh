#!/usr/bin/env bash
# Install (or upgrade, or remove) the Mắt Thần agent as a systemd service, from the checkout this script is in.
# Raspberry Pi OS bookworm, Debian 12, Ubuntu 22.04+; arm64 and x86_64 (armhf where wheels exist).
#
#   sudo scripts/install.sh                 install or upgrade, enable and start the service
#   sudo scripts/install.sh --uninstall     remove program and service; keep config, data and the user
#   sudo scripts/install.sh --uninstall --purge   ...and remove config, data and the user too
#   scripts/install.sh --root DIR           stage everything under DIR (for CI): no user is created, nothing
#                                           is asked of systemd; what would be done is listed in
#                                           DIR/var/lib/matthan-agent-install/actions.log
#   --no-venv (or MATTHAN_INSTALL_SKIP_VENV=1)   skip building the venv (tests)
#   --no-start                              install and enable, but do not start now
#
# Running it twice is safe: an existing /etc/matthan-agent/agent.yaml is never overwritten.
set -euo pipefail

APP=matthan-agent
USER_NAME=matthan
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

ROOT=""
MODE=install
PURGE=0
START=1
SKIP_VENV="${MATTHAN_INSTALL_SKIP_VENV:-0}"
BUILD_DIR=""

die() { echo "error: $*" >&2; exit 1; }
say() { echo "==> $*" >&2; }

usage() { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT="$2"; shift 2 ;;
    --root=*) ROOT="${1#--root=}"; shift ;;
    --uninstall) MODE=uninstall; shift ;;
    --purge) PURGE=1; shift ;;
    --no-venv) SKIP_VENV=1; shift ;;
    --no-start) START=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[ "$PURGE" -eq 0 ] || [ "$MODE" = uninstall ] || die "--purge only makes sense with --uninstall"

if [ -n "$ROOT" ]; then
  mkdir -p "$ROOT" || die "cannot create staging root $ROOT"
  ROOT="$(cd "$ROOT" && pwd)"
  [ "$ROOT" != / ] || die "--root / is the real system; run without --root instead"
  STAGING=1
else
  STAGING=0
  [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 $*), or use --root DIR to stage into a directory"
fi

OPT="$ROOT/opt/$APP"
ACTIONS="$ROOT/var/lib/$APP-install/actions.log"
VENV="$OPT/venv"
ETC="$ROOT/etc/$APP"
CONF="$ETC/agent.yaml"
STATE="$ROOT/var/lib/$APP"
UNIT="$ROOT/etc/systemd/system/$APP.service"
LINK="$ROOT/usr/local/bin/$APP"
if [ "$STAGING" -eq 1 ]; then  # the record of this run only
  mkdir -p "$(dirname "$ACTIONS")"
  : > "$ACTIONS"
fi

# A privileged action on the real system; in a staging root it is only recorded.
act() {
  if [ "$STAGING" -eq 1 ]; then
    echo "$*" >> "$ACTIONS"
    echo "    (staging, not run) $*" >&2
  else
    "$@"
  fi
}

have_systemd() { [ "$STAGING" -eq 0 ] && [ -d /run/systemd/system ]; }

systemctl_or_say() {
  if [ "$STAGING" -eq 1 ]; then
    act systemctl "$@"
  elif have_systemd; then
    systemctl "$@"
  else
    echo "    systemd is not running here; skipped: systemctl $*" >&2
  fi
}

check_platform() {
  local id="" version_id="" like="" arch
  if [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091
    . /etc/os-release
    id="${ID:-}" version_id="${VERSION_ID:-}" like="${ID_LIKE:-}"
  fi
  case "$id" in
    debian|raspbian) [ "${version_id%%.*}" -ge 12 ] 2>/dev/null || echo "warning: $id $version_id is older than 12 (bookworm); not supported" >&2 ;;
    ubuntu) [ "${version_id%%.*}" -ge 22 ] 2>/dev/null || echo "warning: Ubuntu $version_id is older than 22.04; not supported" >&2 ;;
    *) case " $like " in
         *" debian "*) echo "warning: $id is Debian-like but untested; supported are Debian 12, Raspberry Pi OS bookworm, Ubuntu 22.04+" >&2 ;;
         *) [ "$STAGING" -eq 1 ] || die "unsupported system '${id:-unknown}': supported are Debian 12, Raspberry Pi OS bookworm, Ubuntu 22.04+" ;;
       esac ;;
  esac
  arch="$(uname -m)"
  case "$arch" in
    aarch64|x86_64) ;;
    armv7l|armv6l) echo "warning: 32-bit ARM ($arch): OpenCV and PyAV wheels come from piwheels.org when they exist there; a 64-bit OS is the supported choice" >&2 ;;
    *) echo "warning: architecture $arch is untested; pip may have to build OpenCV/PyAV from source (slow)" >&2 ;;
  esac
}

pick_python() {
  local c
  for c in python3.13 python3.12 python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  return 1
}

ensure_python() {
  local py
  if py="$(pick_python)"; then echo "$py"; return 0; fi
  [ "$STAGING" -eq 0 ] || die "Python 3.11+ with venv is needed (apt-get install python3-venv)"
  say "installing Python 3.11+ with venv support"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed; check the network and /etc/apt/sources.list"
  if apt-cache show python3.11-venv >/dev/null 2>&1 && ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    apt-get install -y -qq python3.11 python3.11-venv >/dev/null || die "apt-get install python3.11-venv failed"  # Ubuntu 22.04
  else
    apt-get install -y -qq python3-venv >/dev/null || die "apt-get install python3-venv failed"
  fi
  pick_python || die "still no Python 3.11+ with venv after apt-get; install python3.11-venv by hand"
}

ensure_user() {
  if [ "$STAGING" -eq 1 ]; then
    act useradd --system --user-group --home-dir "/var/lib/$APP" --no-create-home --shell /usr/sbin/nologin "$USER_NAME"
  elif getent passwd "$USER_NAME" >/dev/null; then
    echo "    user $USER_NAME exists" >&2
  else
    say "creating system user $USER_NAME"
    useradd --system --user-group --home-dir "/var/lib/$APP" --no-create-home --shell /usr/sbin/nologin \
      --comment "Mắt Thần camera agent" "$USER_NAME" || die "useradd $USER_NAME failed"
  fi
}

# install -d / install -m with owner only on the real system (the staging root has no such user).
own() {  # own OWNER:GROUP PATH...
  local who="$1"; shift
  if [ "$STAGING" -eq 1 ]; then act chown "$who" "$@"; else chown "$who" "$@"; fi
}

build_venv() {
  local py
  if [ "$SKIP_VENV" = 1 ]; then
    say "skipping the venv (--no-venv)"
    mkdir -p "$OPT"
    return 0
  fi
  py="$(ensure_python)"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $py"
    mkdir -p "$OPT"
    "$py" -m venv "$VENV" || die "could not create the venv (on Debian: apt-get install python3-venv)"
  fi
  say "installing matthan-agent from $SRC into $VENV (downloads OpenCV, PyAV, numpy the first time)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null \
    || die "pip upgrade failed; check the network"
  # Build from a scratch copy: setuptools builds in-tree, and root-owned build/ and *.egg-info directories
  # left in the technician's own checkout would get in the way of the next `git pull`.
  BUILD_DIR="$(mktemp -d)"
  trap 'rm -rf "$BUILD_DIR"' EXIT
  cp -r "$SRC/pyproject.toml" "$SRC/README.md" "$SRC/agent" "$BUILD_DIR/"
  find "$BUILD_DIR" -name __pycache__ -prune -exec rm -rf {} +
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade "$BUILD_DIR" \
    || die "pip install of $SRC failed (see above); on armhf, check that piwheels.org is in /etc/pip.conf"
  "$VENV/bin/$APP" --version >/dev/null || die "$VENV/bin/$APP does not run after install"
}

install_config() {
  local example="$SRC/config/agent.example.yaml"
  [ -f "$example" ] || die "$example is missing from this checkout"
  install -d -m 0750 "$ETC"
  own "root:$USER_NAME" "$ETC"
  install -m 0644 "$example" "$ETC/agent.example.yaml"
  if [ -e "$CONF" ]; then
    echo "    keeping the existing $CONF (the new example is at $ETC/agent.example.yaml)" >&2
    if [ -n "$(find "$CONF" -perm -o=r)" ]; then
      echo "warning: $CONF is readable by every user and holds passwords: chmod 0640 $CONF" >&2
    fi
  else
    say "creating $CONF from the example: edit it for this commune's cameras and broker"
    install -m 0640 "$example" "$CONF"
    own "root:$USER_NAME" "$CONF"
  fi
}

do_install() {
  check_platform
  say "installing $APP from $SRC${ROOT:+ into staging root $ROOT}"
  ensure_user
  build_venv
  install -m 0644 "$SRC/README.md" "$OPT/README.md"
  install -d -m 0755 "$(dirname "$LINK")"
  ln -sfn "/opt/$APP/venv/bin/$APP" "$LINK"
  install_config
  install -d -m 0750 "$STATE"
  own "$USER_NAME:$USER_NAME" "$STATE"
  install -d -m 0755 "$(dirname "$UNIT")"
  install -m 0644 "$SRC/systemd/$APP.service" "$UNIT"
  systemctl_or_say daemon-reload
  local start="$START" rc=0
  if [ "$SKIP_VENV" != 1 ] && [ "$STAGING" -eq 0 ]; then
    "$VENV/bin/$APP" check-config "$CONF" >/dev/null 2>&1 || rc=$?
    if [ "$rc" -eq 78 ]; then  # EX_CONFIG: the file is wrong; starting would only fail the same way
      echo "warning: $CONF is not valid yet, so the service is enabled but not started." >&2
      echo "         See the problems: $APP check-config $CONF ; then: sudo systemctl restart $APP" >&2
      start=0
    elif [ "$rc" -ne 0 ]; then
      echo "warning: could not check $CONF (check-config exit $rc); starting anyway" >&2
    fi
  fi
  if [ "$start" -eq 1 ]; then
    if have_systemd && systemctl is-active --quiet "$APP"; then
      say "upgrade: restarting the running service on the new code"
      systemctl enable "$APP"
      systemctl restart "$APP" || echo "warning: $APP did not restart; see: journalctl -u $APP -n 50" >&2
    else
      systemctl_or_say enable --now "$APP" || echo "warning: $APP did not start; see: journalctl -u $APP -n 50" >&2
    fi
  else
    systemctl_or_say enable "$APP"
  fi
  cat <<EOF

Mắt Thần agent installed${ROOT:+ into $ROOT}.
  configuration:  /etc/$APP/agent.yaml   (check it: $APP check-config /etc/$APP/agent.yaml)
  data:           /var/lib/$APP
Check it is running:
  systemctl status $APP
  journalctl -u $APP -f
  $APP status
  $APP doctor
After editing the configuration:  sudo systemctl reload $APP   (cameras only)  or  sudo systemctl restart $APP
EOF
  if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    echo "To run '$APP status' as $SUDO_USER (it reads /var/lib/$APP): sudo usermod -aG $USER_NAME $SUDO_USER"
  fi
}

do_uninstall() {
  say "removing $APP${ROOT:+ from staging root $ROOT}"
  if [ -e "$UNIT" ] || [ "$STAGING" -eq 1 ]; then
    systemctl_or_say disable --now "$APP"
  fi
  rm -f "$UNIT"
  systemctl_or_say daemon-reload
  if [ -L "$LINK" ] && [ "$(readlink "$LINK")" = "/opt/$APP/venv/bin/$APP" ]; then
    rm -f "$LINK"
  fi
  rm -rf "$OPT"
  if [ "$PURGE" -eq 1 ]; then
    say "purging configuration, data and the $USER_NAME user"
    rm -rf "$ETC" "$STATE"
    if [ "$STAGING" -eq 1 ]; then
      act userdel "$USER_NAME"
    elif getent passwd "$USER_NAME" >/dev/null; then
      userdel "$USER_NAME" || echo "warning: userdel $USER_NAME failed; remove it by hand" >&2
    fi
  else
    echo "kept: /etc/$APP (configuration), /var/lib/$APP (events not yet sent, inventory) and user $USER_NAME;" >&2
    echo "      remove them too with: $0 --uninstall --purge" >&2
  fi
}

case "$MODE" in
  install) do_install ;;
  uninstall) do_uninstall ;;
esac
