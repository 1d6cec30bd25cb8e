# Shared helpers for scripts/dev and scripts/test (sourced, not run).

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))'; then
      echo "$candidate"; return 0
    fi
  done
  echo "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)." >&2
  return 1
}

# ensure_venv REQUIREMENTS_FILE: create .venv and (re)install when the requirements changed.
ensure_venv() {
  local requirements="$1" venv="$REPO_DIR/.venv" stamp digest
  if [ ! -x "$venv/bin/python" ]; then
    log "Creating $venv"
    "$(pick_python)" -m venv "$venv"
  fi
  digest="$(cat "$REPO_DIR"/requirements*.txt "$REPO_DIR"/app/requirements.txt | sha256sum | cut -c1-64)"
  stamp="$venv/.installed-$(basename "$requirements")"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    log "Installing $(basename "$requirements") into .venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REPO_DIR/$requirements"
    echo "$digest" > "$stamp"
  fi
}

free_port() {
  "$REPO_DIR/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
