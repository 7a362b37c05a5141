#!/usr/bin/env bash
# Run the test suite (creates .venv and installs what it needs on first use). Extra args go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
# Programs the tests run for real (no mocks): an MQTT broker, and Chromium for the web page's
# browser tests. Installed from Debian when missing and we may (root, as in CI); otherwise those
# tests skip with a line saying how to install them (under CI=true the browser tests fail).
missing=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v chromium >/dev/null || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} (Debian packages the tests use)" >&2
    if ! { apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        >"$VENV/apt-install.log" 2>&1; then
        tail -n 20 "$VENV/apt-install.log" >&2
        echo "warning: could not install ${missing[*]}; the tests that need them will skip" >&2
    fi
fi
cd "$REPO"
exec "$VENV/bin/python" -m pytest "$@"
