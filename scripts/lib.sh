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
# REQUIREMENTS_FILE is relative to the repository: app/requirements.txt (the application alone:
# scripts/dev), requirements.txt (app + Pulumi), requirements-dev.txt (those + test tools).
ensure_venv() {
  local requirements="$1" venv="$REPO_DIR/.venv" stamp digest
  if [ ! -x "$venv/bin/python" ]; then
    log "Creating $venv"
    "$(pick_python)" -m venv "$venv"
  fi
  digest="$(cat "$REPO_DIR"/requirements*.txt "$REPO_DIR"/app/requirements.txt "$REPO_DIR"/infra/requirements.txt \
    | sha256sum | cut -c1-64)"
  stamp="$venv/.installed-${requirements//\//-}"  # app/requirements.txt: .installed-app-requirements.txt
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    log "Installing $(basename "$requirements") into .venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REPO_DIR/$requirements"
    echo "$digest" > "$stamp"
  fi
}

free_port() {
  "$REPO_DIR/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
pg_bindir() {
  local dir
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
  for dir in /usr/lib/postgresql/*/bin; do [ -x "$dir/initdb" ] && { echo "$dir"; return; }; done
  return 1
}
# start_postgres DIR [durable]: a throwaway PostgreSQL cluster in DIR/pg on a free loopback port.
# Sets PG_PORT. Runs the server as user postgres when we are root (initdb refuses root). Without
# "durable" it skips fsync (tests); with it, commits reach the disk as in production (benchmarks).
start_postgres() {
  PG_DIR="$1/pg"
  PG_BIN="$(pg_bindir)"
  local durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  [ "${2:-}" = durable ] && durability="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
  PG_PORT="$(free_port)"
  AS_PG=()
  [ "$(id -u)" = 0 ] && AS_PG=(runuser -u postgres --)
  chmod 755 "$1"
  mkdir -p "$PG_DIR"
  [ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR"
  log "Starting PostgreSQL on 127.0.0.1:$PG_PORT"
  "${AS_PG[@]}" "$PG_BIN/initdb" -D "$PG_DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR" -w -l "$PG_DIR/server.log" start -o \
    "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 $durability -c max_connections=300" >/dev/null
}

# start_redis DIR: a throwaway Redis on a free loopback port. Sets REDIS_PORT, REDIS_PID.
start_redis() {
  REDIS_PORT="$(free_port)"
  log "Starting Redis on 127.0.0.1:$REDIS_PORT"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$1" \
    --logfile "$1/redis.log" &
  REDIS_PID=$!
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
}

stop_services() {
  if [ -n "${REDIS_PID:-}" ]; then kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; REDIS_PID=""; fi
  if [ -n "${PG_DIR:-}" ] && [ -f "$PG_DIR/postmaster.pid" ]; then
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR" -m fast -w stop >/dev/null 2>&1 || true
  fi
  return 0
}

# ensure_node_modules: install the browser dependencies (package-lock.json) when they changed.
ensure_node_modules() {
  local stamp="$REPO_DIR/node_modules/.installed-lock"
  if [ ! -f "$stamp" ] || ! cmp -s "$stamp" "$REPO_DIR/package-lock.json"; then
    if ! command -v npm >/dev/null 2>&1; then
      if [ "$(id -u)" = 0 ]; then
        log "Installing npm with apt"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
      else
        echo "npm is needed for the attempt page's SCORM library (sudo apt-get install npm)." >&2
        return 1
      fi
    fi
    log "Installing browser dependencies (npm ci)"
    (cd "$REPO_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp "$REPO_DIR/package-lock.json" "$stamp"
  fi
}

# load_stack_backup_env: the environment of numbas-backup for the local stack in STACK_DIR,
# written by tests/support/stack.py when it runs with backups (STACK_BACKUPS=1 scripts/stack).
load_stack_backup_env() {
  if [ -z "${STACK_DIR:-}" ] || [ ! -f "$STACK_DIR/backup.env" ]; then
    echo "Set STACK_DIR to the directory of a local stack started with backups:" >&2
    echo "  STACK_BACKUPS=1 STACK_DIR=/tmp/numbas-stack scripts/stack" >&2
    echo "(on a server, run numbas-backup in the backup container instead: README.md, \"Backups\")." >&2
    exit 2
  fi
  # shellcheck disable=SC1091
  source "$STACK_DIR/backup.env"
}

# Compile the translation catalogues whose .po is newer than its .mo (a translator's edit), when
# GNU gettext is there. The .mo files are committed (scripts/messages; README.md, "Languages").
compile_changed_messages() {
  local po mo
  for po in "$REPO_DIR"/app/locale/*/LC_MESSAGES/*.po; do
    [ -f "$po" ] || continue
    mo="${po%.po}.mo"
    if [ ! -f "$mo" ] || [ "$po" -nt "$mo" ]; then
      if command -v msgfmt >/dev/null 2>&1; then
        log "Compiling ${po#"$REPO_DIR"/}"
        msgfmt --check -o "$mo" "$po"
      else
        log "${po#"$REPO_DIR"/} changed but msgfmt is missing (apt-get install gettext): pages use the old ${mo##*/}"
      fi
    fi
  done
}
