#!/usr/bin/env bash
# Run the test suite (creates .venv and installs what it needs on first use). Extra args go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$REPO"
exec "$VENV/bin/python" -m pytest "$@"
