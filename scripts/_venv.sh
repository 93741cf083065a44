# Sourced by the set-up scripts: creates ./.venv on first use and installs the project into it.
# Why a stamp file: re-running pip on every start would cost seconds.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
EXTRAS="${VENV_EXTRAS:-}"  # set by the caller; never the caller's arguments
stamp="$VENV/.installed${EXTRAS:+-$EXTRAS}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    # compat mode: a plain .pth path entry; the default import-hook finder costs start-up time
    "$VENV/bin/pip" install -q --disable-pip-version-check --config-settings editable_mode=compat \
        -e "$ROOT${EXTRAS:+[$EXTRAS]}"
    touch "$stamp"
fi
