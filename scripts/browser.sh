#!/usr/bin/env bash
# The browser the console's tests drive: Debian's Chromium, installed when missing.
# Only the tests need it (make test runs this); make run does not.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "browser: installing chromium with apt" >&2
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
