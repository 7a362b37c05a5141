#!/usr/bin/env bash
# Run the test suite (creates .venv and installs what it needs on first use). Extra args go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$REPO"
# The browser tests (tests/server/test_page.py) drive Debian's chromium: install it when it is
# missing and we may (CI runs a fresh clone as root). Elsewhere those tests skip, saying how.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium (apt-get) for the browser tests" >&2
    log="$VENV/apt-chromium.log"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
        >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        echo "warning: installing chromium failed (full log: $log)" >&2
    fi
fi
exec "$VENV/bin/python" -m pytest "$@"
