#!/usr/bin/env bash
# Create the virtual environment and install the locked dependencies into it.
# Usage: scripts/bootstrap.sh PYTHON VENV
set -euo pipefail
PYTHON=${1:-python3}
VENV=${2:-.venv}

apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "bootstrap: installing $* with apt" >&2
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v "$PYTHON" >/dev/null || { echo "bootstrap: $PYTHON not found (Python 3.11+ is needed)" >&2; exit 1; }
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "bootstrap: Python 3.11 or newer is needed" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    # Debian ships venv (and ensurepip) separately.
    rm -rf "$VENV"
    version=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    apt_install "python${version}-venv" || apt_install python3-venv
    "$PYTHON" -m venv "$VENV"
  fi
fi
pip_install() {
  # Quiet, but a failure still fails (pipefail); drop this machine's index warnings.
  "$VENV/bin/python" -m pip install -q "$@" 2>&1 | { grep -v "is ignored" || true; }
}
pip_install --require-hashes -r requirements.lock
pip_install --no-deps -e .
"$VENV/bin/python" -c "import shared, control_plane, data_plane, litestar, aiohttp, asyncpg" \
  || { echo "bootstrap: the installation is incomplete" >&2; exit 1; }
