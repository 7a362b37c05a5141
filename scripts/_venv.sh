# Sourced by demo.sh and test.sh: make .venv with facesearch installed (once; again when pyproject changes).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FACESEARCH_VENV:-$REPO/.venv}"
PY="${PYTHON:-python3}"
stamp="$VENV/.facesearch-installed"
want="$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating virtual environment in $VENV" >&2
    "$PY" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "installing facesearch and its dependencies into $VENV (first run: a few minutes)" >&2
    log="$VENV/pip-install.log"
    if ! "$VENV/bin/python" -m pip install -e "$REPO[test,server]" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        echo "error: installing facesearch failed (full log: $log)" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi
# Use the shared FaceNet checkpoint beside the repo when there is one (tests and CI never download).
SHARED="${FACESEARCH_SHARED:-$(cd "$REPO/.." && pwd)/shared}"
if [ -z "${FACESEARCH_MODELS:-}" ] && [ -d "$SHARED/models" ]; then
    export FACESEARCH_MODELS="$SHARED/models"
fi
export FACESEARCH_SHARED="$SHARED"
