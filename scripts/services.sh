#!/usr/bin/env bash
# Install (project-locally, on demand) and run the local emulators used by the
# sink tests:
#   * Firestore : npm @firestore-emulator/server (gRPC), via scripts/firestore-emulator/server.js
#   * BigQuery  : PyPI bqemulator (REST + gRPC, DuckDB-backed), in .logkit/bqemu-venv
#   * Phoenix   : PyPI arize-phoenix (an OTLP/HTTP receiver with a REST read-back API), in
#                 .logkit/phoenix-venv, offline: telemetry and external resources off
#
# Usage: bash scripts/services.sh start|stop|restart|status|reset-firestore|install
#
# `start` is idempotent: a service that is already running and answering is
# reused (same port), a dead one is restarted on a fresh free port. When both
# answer, .logkit/services.env is (re)written:
#   FIRESTORE_EMULATOR_HOST=127.0.0.1:PORT
#   BIGQUERY_EMULATOR_HOST=http://127.0.0.1:PORT
#   BIGQUERY_STORAGE_EMULATOR_HOST=127.0.0.1:PORT   (gRPC: Storage Write API, AppendRows)
#   GOOGLE_CLOUD_PROJECT=logkit-test
#   PHOENIX_URL=http://127.0.0.1:PORT
#   REDIS_URL=redis://127.0.0.1:PORT/0   (redis-server, the live feed; AOF on)
# Everything binds to 127.0.0.1 only. Nothing is installed outside the repo.
#
# Knobs (env): PYTHON (interpreter for the venv, default python3),
#              SERVICES_START_TIMEOUT (seconds, default 60),
#              BQEMU_LOG_LEVEL (default warning; `info` logs every HTTP request).
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$SCRIPTS_DIR")"
LOGKIT_DIR="$REPO_ROOT/.logkit"
STATE_DIR="$LOGKIT_DIR/services"
ENV_FILE="$LOGKIT_DIR/services.env"

FS_DIR="$SCRIPTS_DIR/firestore-emulator"
BQ_VENV="$LOGKIT_DIR/bqemu-venv"
BQ_HOME="$LOGKIT_DIR/bqemu-home"   # HOME for bqemulator: DuckDB keeps extensions in $HOME/.duckdb
BQ_REQS="$SCRIPTS_DIR/bqemulator-requirements.txt"
BQ_MARKER="$BQ_VENV/.logkit-installed"

PHX_VENV="$LOGKIT_DIR/phoenix-venv"
PHX_HOME="$LOGKIT_DIR/phoenix-home"   # Phoenix's SQLite database, wiped at each launch
PHX_REQS="$SCRIPTS_DIR/phoenix-requirements.txt"
PHX_MARKER="$PHX_VENV/.logkit-installed"

PYTHON="${PYTHON:-python3}"
START_TIMEOUT="${SERVICES_START_TIMEOUT:-60}"
BQEMU_LOG_LEVEL="${BQEMU_LOG_LEVEL:-warning}"
PROJECT_ID="logkit-test"
HOST="127.0.0.1"

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

# ---------------------------------------------------------------- install ---

ensure_firestore_deps() {
  command -v node >/dev/null 2>&1 || die "node not found in PATH (Node >= 20 needed for the Firestore emulator)"
  command -v npm >/dev/null 2>&1 || die "npm not found in PATH"
  if [[ -f "$FS_DIR/node_modules/@firestore-emulator/server/package.json" \
     && -f "$FS_DIR/node_modules/@grpc/grpc-js/package.json" ]]; then
    return 0
  fi
  local t0; t0="$(now)"
  log "installing Firestore emulator node deps into $FS_DIR/node_modules ..."
  if [[ -f "$FS_DIR/package-lock.json" ]]; then
    (cd "$FS_DIR" && npm ci --no-audit --no-fund --loglevel=error) >&2
  else
    (cd "$FS_DIR" && npm install --no-audit --no-fund --loglevel=error) >&2
  fi
  log "node deps installed in $(elapsed "$t0")s"
}

reqs_hash() { sha256sum "$1" | cut -d' ' -f1; }

# venv_current EXECUTABLE MARKER HASH: the venv is installed from requirements with this hash.
venv_current() { [[ -x "$1" && -f "$2" && "$(cat "$2")" == "$3" ]]; }

ensure_bq_venv() {
  [[ -f "$BQ_REQS" ]] || die "missing $BQ_REQS"
  local want; want="$(reqs_hash "$BQ_REQS")"
  venv_current "$BQ_VENV/bin/bqemulator" "$BQ_MARKER" "$want" && return 0
  local t0; t0="$(now)"
  log "creating BigQuery emulator venv at $BQ_VENV ..."
  rm -rf "$BQ_VENV"
  mkdir -p "$LOGKIT_DIR"
  "$PYTHON" -m venv "$BQ_VENV"
  # pip may print harmless "Location 'file:///opt/...' is ignored" warnings here.
  "$BQ_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      -r "$BQ_REQS" 2> >(grep -v "^WARNING: Location 'file://" >&2)
  install_duckdb_spatial
  patch_bq_upload
  patch_bq_write
  echo "$want" > "$BQ_MARKER"
  log "BigQuery emulator venv ready in $(elapsed "$t0")s"
}

# bqemulator runs `INSTALL spatial; LOAD spatial` at boot and refuses to start
# if that fails. With no internet, pre-install the extension file shipped by
# the PyPI package duckdb-extension-spatial into DuckDB's extension dir
# ($HOME/.duckdb/extensions/vX.Y.Z/<platform>/); HOME is pointed into .logkit
# so nothing lands in the real home directory. Afterwards `INSTALL spatial`
# is a no-op that finds the local copy.
install_duckdb_spatial() {
  mkdir -p "$BQ_HOME"
  HOME="$BQ_HOME" "$BQ_VENV/bin/python" - <<'PY'
import glob, os, sys
import duckdb, duckdb_extension_spatial
pkg = os.path.dirname(duckdb_extension_spatial.__file__)
files = glob.glob(os.path.join(pkg, "extensions", "*", "spatial.duckdb_extension"))
if not files:
    sys.exit(f"no spatial.duckdb_extension file under {pkg}")
ext = files[0]
con = duckdb.connect()
con.execute(f"INSTALL '{ext}'")
con.execute("LOAD spatial")
row = con.execute(
    "SELECT install_path FROM duckdb_extensions() WHERE extension_name = 'spatial'"
).fetchone()
print(f"[services] duckdb {duckdb.__version__}: spatial installed at {row[0]}", file=sys.stderr)
PY
}

# bqemulator 1.4.0 rejects the multipart upload that google-cloud-bigquery's
# load_table_from_json()/load_table_from_file(size=...) send, because the media
# part is labelled Content-Type "*/*" (the client's _GENERIC_CONTENT_TYPE) and
# the emulator only whitelists concrete types -> "400 multipart upload's second
# part has unsupported Content-Type '*/*'". Production BigQuery accepts "*/*".
# Add it to the emulator's whitelist (idempotent, project-local venv only).
patch_bq_upload() {
  "$BQ_VENV/bin/python" - <<'PY'
import pathlib, sys, sysconfig
# locate the file without importing bqemulator (its import logs to stdout)
p = pathlib.Path(sysconfig.get_paths()["purelib"]) / "bqemulator/api/routes/upload.py"
src = p.read_text()
marker = '"*/*",  # logkit patch'
if marker in src:
    sys.exit(0)
anchor = "_PERMITTED_MEDIA_CONTENT_TYPES = (\n"
if anchor not in src:  # warn only: everything except multipart load uploads still works
    print(f"[services] WARNING: cannot patch {p}: anchor not found (bqemulator changed?)", file=sys.stderr)
    sys.exit(0)
p.write_text(src.replace(anchor, anchor + '    ' + marker + ": google-cloud-bigquery multipart media part\n", 1))
for c in p.parent.glob("__pycache__/upload.*.pyc"):
    c.unlink()
print(f"[services] patched {p}: multipart media part may be */*", file=sys.stderr)
PY
}

# Two fixes to bqemulator for the Storage Write API path (idempotent, project-local venv only):
# 1. Every write copies the whole table for time travel (CREATE TABLE AS SELECT *), kept for
#    time_travel_retention_days: each write costs O(table) and memory only grows. Real
#    BigQuery's time travel costs nothing per write, and nothing here queries FOR SYSTEM_TIME.
#    With BQEMU_TIME_TRAVEL_RETENTION_DAYS=0 (set in launch) the copy is skipped; the change
#    event (cache invalidation) is still published.
# 2. AppendRows inserted through the single DuckDB connection the REST side also uses, from a
#    gRPC thread: that thread holds DuckDB's connection lock while a Python object's destructor
#    waits for the GIL, and the event-loop thread holds the GIL waiting for that lock (seen in
#    gdb: a deadlock, the emulator stops answering). The insert gets a cursor of its own.
patch_bq_write() {
  "$BQ_VENV/bin/python" - <<'PY'
import pathlib, sys, sysconfig
root = pathlib.Path(sysconfig.get_paths()["purelib"]) / "bqemulator"
marker = "# logkit patch"
patches = {
    "versioning/snapshots.py": (
        '        meta = self.capture(project_id, dataset_id, table_id, kind="AUTO")\n',
        "        if self._retention_days == 0:  " + marker + ": no copy without retention\n"
        "            self._events.publish(TableDataChanged(project_id, dataset_id, table_id))\n"
        "            return None\n",
    ),
    "grpc_api/write_servicer.py": (
        "            self._ctx.engine.connection.register(reg_name, rows)\n"
        "            try:\n"
        "                self._ctx.engine.execute(\n"
        '                    f"INSERT INTO {target_ref} SELECT * FROM {reg_name}",\n'
        "                )\n"
        "            finally:\n"
        "                self._ctx.engine.connection.unregister(reg_name)\n",
        "            cursor = self._ctx.engine.connection.cursor()  " + marker + ": own context\n"
        "            try:\n"
        "                cursor.register(reg_name, rows)\n"
        '                cursor.execute(f"INSERT INTO {target_ref} SELECT * FROM {reg_name}")\n'
        "                cursor.unregister(reg_name)\n"
        "            finally:\n"
        "                cursor.close()\n",
    ),
}
for name, (anchor, replacement) in patches.items():
    p = root / name
    src = p.read_text()
    if marker in src:
        continue
    if anchor not in src:
        print(f"[services] WARNING: cannot patch {p}: anchor not found (bqemulator changed?)", file=sys.stderr)
        continue
    if name.endswith("snapshots.py"):
        replacement += anchor  # inserted before the copy, which stays for retention > 0
    p.write_text(src.replace(anchor, replacement, 1))
    for c in p.parent.glob(f"__pycache__/{p.stem}.*.pyc"):
        c.unlink()
    print(f"[services] patched {p}", file=sys.stderr)
PY
}

# --- Arize Phoenix: installed once (~1.5 min, ~850 MB), reused while the pins are unchanged.
ensure_phoenix_venv() {
  [[ -f "$PHX_REQS" ]] || die "missing $PHX_REQS"
  local want; want="$(reqs_hash "$PHX_REQS")"
  venv_current "$PHX_VENV/bin/phoenix" "$PHX_MARKER" "$want" && return 0
  local t0; t0="$(now)"
  log "creating Phoenix venv at $PHX_VENV (once; reused afterwards) ..."
  rm -rf "$PHX_VENV"
  mkdir -p "$LOGKIT_DIR"
  "$PYTHON" -m venv "$PHX_VENV"
  "$PHX_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
      -r "$PHX_REQS" 2> >(grep -v "^WARNING: Location 'file://" >&2)
  echo "$want" > "$PHX_MARKER"
  log "Phoenix venv ready in $(elapsed "$t0")s ($(du -sh "$PHX_VENV" | cut -f1))"
}

bq_spatial_present() {
  local ver
  ver="$("$BQ_VENV/bin/python" -c 'import duckdb; print(duckdb.__version__)')"
  compgen -G "$BQ_HOME/.duckdb/extensions/v$ver/*/spatial.duckdb_extension" >/dev/null
}

# ------------------------------------------------------------ process mgmt ---

pidfile() { echo "$STATE_DIR/$1.pid"; }
portfile() { echo "$STATE_DIR/$1.port"; }
grpcportfile() { echo "$STATE_DIR/$1.grpc-port"; }
logfile() { echo "$STATE_DIR/$1.log"; }

# Signature that must appear in the process command line, so a recycled pid
# is never mistaken for (or killed as) one of ours.
signature() {
  case "$1" in
    firestore) echo "firestore-emulator/server.js" ;;
    bigquery) echo "bqemulator" ;;
    phoenix) echo "phoenix-venv/bin/phoenix" ;;
  esac
}

# Print the pid if the service's pidfile points at a live process of ours.
live_pid() {
  local name="$1" pf pid cmd sig
  pf="$(pidfile "$name")"
  [[ -f "$pf" ]] || return 1
  pid="$(cat "$pf" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  cmd="$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null || true)"
  sig="$(signature "$name")"
  [[ "$cmd" == *"$sig"* ]] || return 1
  # a zombie is not alive
  [[ "$(proc_stat_field "$pid" 3)" != "Z" ]] || return 1
  echo "$pid"
}

# Field N of /proc/PID/stat (3 = state, 5 = pgid); comm (field 2) may contain
# spaces, so split after the closing parenthesis. No procps needed.
proc_stat_field() {
  local stat rest
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  rest="${stat##*) }"
  awk -v n="$(( $2 - 2 ))" '{ print $n }' <<<"$rest"
}

free_ports() {  # free_ports N -> N distinct free loopback ports, one per line
  "$PYTHON" - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
for s in socks:
    s.close()
PY
}

healthy() {  # healthy NAME PORT
  case "$1" in
    firestore)
      node "$FS_DIR/healthcheck.js" "$2" "$HOST" >/dev/null 2>&1 ;;
    bigquery)
      "$PYTHON" - "$2" >/dev/null 2>&1 <<'PY'
import json, sys, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/readyz"
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never use a proxy
with opener.open(url, timeout=2) as r:
    sys.exit(0 if r.status == 200 and json.load(r).get("status") == "ok" else 1)
PY
      ;;
    phoenix)
      "$PYTHON" - "$2" >/dev/null 2>&1 <<'PY'
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never use a proxy
with opener.open(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
      ;;
  esac
}

launch() {  # launch NAME PORT [GRPC_PORT]
  local name="$1" port="$2" lf pf
  lf="$(logfile "$name")"; pf="$(pidfile "$name")"
  : > "$lf"
  # setsid: own session + process group (pgid == pid), so `stop` can kill the
  # whole group; stdin from /dev/null so nothing holds the caller's terminal.
  case "$name" in
    firestore)
      setsid node "$FS_DIR/server.js" "$port" "$HOST" </dev/null >>"$lf" 2>&1 &
      ;;
    bigquery)
      # HOME: DuckDB finds the pre-installed spatial extension there.
      # TMPDIR / upload staging dir: keep the emulator's temp files inside .logkit.
      mkdir -p "$LOGKIT_DIR/bqemu-tmp"
      HOME="$BQ_HOME" TMPDIR="$LOGKIT_DIR/bqemu-tmp" \
      BQEMU_UPLOAD_STAGING_DIR="$LOGKIT_DIR/bqemu-tmp/uploads" \
      BQEMU_ENABLE_FORMAT_EXTENSIONS=false BQEMU_TIME_TRAVEL_RETENTION_DAYS=0 \
        setsid "$BQ_VENV/bin/bqemulator" start \
          --rest-host "$HOST" --rest-port "$port" \
          --grpc-host "$HOST" --grpc-port "$3" \
          --ephemeral --project "$PROJECT_ID" \
          --log-level "$BQEMU_LOG_LEVEL" --log-format console \
          </dev/null >>"$lf" 2>&1 &
      ;;
    phoenix)
      # Loopback only, a fresh database, and nothing fetched from the internet at run time:
      # no telemetry pixels, no web fonts or sandbox downloads, no assistant or MCP endpoints.
      rm -rf "$PHX_HOME"; mkdir -p "$PHX_HOME"
      PHOENIX_HOST="$HOST" PHOENIX_PORT="$port" PHOENIX_GRPC_PORT="$3" \
      PHOENIX_WORKING_DIR="$PHX_HOME" HOME="$PHX_HOME" TMPDIR="$PHX_HOME" \
      PHOENIX_TELEMETRY_ENABLED=false PHOENIX_ALLOW_EXTERNAL_RESOURCES=false \
      PHOENIX_DISABLE_AGENT_ASSISTANT=true PHOENIX_ENABLE_MCP_SERVER=false \
      PHOENIX_ENABLE_PROMETHEUS=false PHOENIX_LOGGING_LEVEL=warning \
      PHOENIX_LOG_MIGRATIONS=false PHOENIX_DB_LOGGING_LEVEL=warning \
      DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 \
        setsid "$PHX_VENV/bin/phoenix" serve </dev/null >>"$lf" 2>&1 &
      ;;
  esac
  echo "$!" > "$pf"
  echo "$port" > "$(portfile "$name")"
  if [[ -n "${3:-}" ]]; then echo "$3" > "$(grpcportfile "$name")"; fi
}

wait_ready() {  # wait_ready NAME PORT T0 -> 0 ready, 1 timeout/failed, 2 lost a port race
  local name="$1" port="$2" t0="$3" deadline
  deadline=$(( $(date +%s) + START_TIMEOUT ))
  while :; do
    if ! live_pid "$name" >/dev/null; then
      if grep -qiE 'address already in use|EADDRINUSE|failed to bind|error while attempting to bind' \
          "$(logfile "$name")" 2>/dev/null; then
        log "$name emulator could not bind its port (taken meanwhile); retrying on another port"
        return 2
      fi
      log "$name emulator exited during startup. Last log lines ($(logfile "$name")):"
      tail -n 40 "$(logfile "$name")" >&2 || true
      return 1
    fi
    if healthy "$name" "$port"; then
      log "$name emulator ready on $HOST:$port in $(elapsed "$t0")s (pid $(cat "$(pidfile "$name")"))"
      return 0
    fi
    if (( $(date +%s) >= deadline )); then
      log "$name emulator not ready on $HOST:$port after ${START_TIMEOUT}s. Last log lines ($(logfile "$name")):"
      tail -n 40 "$(logfile "$name")" >&2 || true
      return 1
    fi
    sleep 0.25
  done
}

kill_service() {  # kill_service NAME
  local name="$1" pid pgid i
  if pid="$(live_pid "$name")"; then
    pgid="$(proc_stat_field "$pid" 5)"
    log "stopping $name (pid $pid, pgid ${pgid:-?})"
    if [[ -n "$pgid" && "$pgid" == "$pid" ]]; then
      kill -TERM -- "-$pgid" 2>/dev/null || true
    else
      kill -TERM "$pid" 2>/dev/null || true
    fi
    for i in $(seq 1 40); do
      live_pid "$name" >/dev/null || break
      sleep 0.25
    done
    if live_pid "$name" >/dev/null; then
      log "$name did not exit on SIGTERM, sending SIGKILL"
      if [[ -n "$pgid" && "$pgid" == "$pid" ]]; then
        kill -KILL -- "-$pgid" 2>/dev/null || true
      else
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.2
    fi
    # children that outlived the leader (same pgid)
    if [[ -n "$pgid" && "$pgid" == "$pid" ]] && kill -0 -- "-$pgid" 2>/dev/null; then
      kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
  fi
  rm -f "$(pidfile "$name")" "$(portfile "$name")" "$(grpcportfile "$name")"
}

# ------------------------------------------------------------------ redis ---
# The live feed's Redis (issue 17): Debian's redis-server, installed as root with apt-get like
# scripts/install-chromium.sh, started on a free loopback port in a temp dir of its own under
# .logkit/ (removed by `stop`) with AOF on (appendfsync everysec); REDIS_URL goes to services.env.
ensure_redis() {
  command -v redis-server >/dev/null 2>&1 && return 0
  [[ "$(id -u)" -eq 0 ]] || die "redis-server is missing and installing it needs root: sudo apt-get install redis-server"
  log "installing Debian's redis-server (once) for the live feed tests..."
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  command -v redis-server >/dev/null 2>&1 || die "redis-server did not install"
}

redis_pid() {  # the pid in the pidfile, if it is our redis-server (a recycled pid is not)
  local pid cmd
  pid="$(cat "$STATE_DIR/redis.pid" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  cmd="$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmd" == *redis-server* ]] || return 1
  echo "$pid"
}

redis_ping() { redis-cli -h "$HOST" -p "$1" ping 2>/dev/null | grep -q PONG; }

start_redis() {
  ensure_redis
  local port dir t0 i
  if redis_pid >/dev/null && [[ -f "$STATE_DIR/redis.port" ]] \
     && redis_ping "$(cat "$STATE_DIR/redis.port")"; then
    log "redis already running on $HOST:$(cat "$STATE_DIR/redis.port")"
    return 0
  fi
  stop_redis
  dir="$(mktemp -d "$LOGKIT_DIR/redis.XXXXXX")"
  echo "$dir" > "$STATE_DIR/redis.dir"
  port="$(free_ports 1)"; t0="$(now)"
  redis-server --bind "$HOST" --port "$port" --dir "$dir" --daemonize yes \
    --pidfile "$STATE_DIR/redis.pid" --logfile "$dir/redis.log" \
    --appendonly yes --appendfsync everysec --save "" >/dev/null
  for i in $(seq 1 100); do
    redis_ping "$port" && break
    sleep 0.1
  done
  if ! redis_ping "$port"; then
    tail -n 20 "$dir/redis.log" >&2 || true
    return 1
  fi
  echo "$port" > "$STATE_DIR/redis.port"
  log "redis ready on $HOST:$port in $(elapsed "$t0")s (AOF in $dir)"
}

stop_redis() {
  local pid i dir
  if pid="$(redis_pid)"; then
    log "stopping redis (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
      redis_pid >/dev/null || break
      sleep 0.1
    done
  fi
  dir="$(cat "$STATE_DIR/redis.dir" 2>/dev/null || true)"
  [[ -n "$dir" && "$dir" == "$LOGKIT_DIR"/redis.* ]] && rm -rf "$dir"
  rm -f "$STATE_DIR/redis.port" "$STATE_DIR/redis.dir" "$STATE_DIR/redis.pid"
}

write_redis_env() {
  if [[ -f "$STATE_DIR/redis.port" ]]; then
    echo "REDIS_URL=redis://$HOST:$(cat "$STATE_DIR/redis.port")/0" >> "$ENV_FILE"
  fi
}
# ------------------------------------------------------------- redis end ---

# ---------------------------------------------------------------- commands ---

start_one() {  # start_one NAME -> ensures running, leaves port in portfile
  local name="$1" port t0 ports
  # (a BigQuery emulator started without a recorded gRPC port is restarted: its Storage
  # Write API port must be known)
  if live_pid "$name" >/dev/null && [[ -f "$(portfile "$name")" ]] \
     && [[ "$name" != bigquery || -f "$(grpcportfile "$name")" ]]; then
    port="$(cat "$(portfile "$name")")"
    if healthy "$name" "$port"; then
      log "$name emulator already running on $HOST:$port (pid $(cat "$(pidfile "$name")"))"
      return 0
    fi
    log "$name emulator process is alive but not answering on $port; restarting it"
  fi
  local attempt rc
  for attempt in 1 2 3; do
    kill_service "$name"
    t0="$(now)"
    case "$name" in
      firestore)
        port="$(free_ports 1)"
        launch firestore "$port"
        ;;
      bigquery)
        ports="$(free_ports 2)"
        port="$(sed -n 1p <<<"$ports")"
        launch bigquery "$port" "$(sed -n 2p <<<"$ports")"
        ;;
      phoenix)
        ports="$(free_ports 2)"
        port="$(sed -n 1p <<<"$ports")"
        launch phoenix "$port" "$(sed -n 2p <<<"$ports")"
        ;;
    esac
    rc=0
    wait_ready "$name" "$port" "$t0" || rc=$?
    (( rc == 0 )) && return 0
    if (( rc != 2 )); then
      kill_service "$name"   # don't leave a half-started emulator behind (its log is kept)
      return 1
    fi
  done
  kill_service "$name"
  return 1
}

write_env() {
  local fs_port bq_port tmp
  fs_port="$(cat "$(portfile firestore)")"
  bq_port="$(cat "$(portfile bigquery)")"
  tmp="$ENV_FILE.tmp.$$"
  {
    echo "FIRESTORE_EMULATOR_HOST=$HOST:$fs_port"
    echo "BIGQUERY_EMULATOR_HOST=http://$HOST:$bq_port"
    echo "BIGQUERY_STORAGE_EMULATOR_HOST=$HOST:$(cat "$(grpcportfile bigquery)")"
    echo "GOOGLE_CLOUD_PROJECT=$PROJECT_ID"
    echo "PHOENIX_URL=http://$HOST:$(cat "$(portfile phoenix)")"
  } > "$tmp"
  mv -f "$tmp" "$ENV_FILE"
}

cmd_install() {
  ensure_firestore_deps
  ensure_bq_venv
  bq_spatial_present || install_duckdb_spatial
  patch_bq_upload
  patch_bq_write
  ensure_phoenix_venv
}

cmd_start() {
  mkdir -p "$STATE_DIR"
  cmd_install
  local rc=0
  start_one firestore || rc=1
  start_one bigquery || rc=1
  start_one phoenix || rc=1
  start_redis || rc=1
  if (( rc != 0 )); then
    rm -f "$ENV_FILE"
    die "emulator startup failed (see logs in $STATE_DIR); run 'bash scripts/services.sh stop' to clean up"
  fi
  write_env
  write_redis_env
  log "wrote $ENV_FILE:"
  sed 's/^/    /' "$ENV_FILE" >&2
}

cmd_stop() {
  kill_service firestore
  kill_service bigquery
  kill_service phoenix
  stop_redis
  rm -f "$ENV_FILE"
  log "stopped"
}

cmd_status() {
  local rc=0 name pid port
  for name in firestore bigquery phoenix; do
    if pid="$(live_pid "$name")"; then
      port="$(cat "$(portfile "$name")" 2>/dev/null || echo '?')"
      if healthy "$name" "$port"; then
        echo "$name: running (pid $pid, $HOST:$port)"
      else
        echo "$name: NOT ANSWERING (pid $pid, $HOST:$port)"; rc=1
      fi
    else
      echo "$name: stopped"; rc=1
    fi
  done
  if [[ -f "$ENV_FILE" ]]; then
    echo "--- $ENV_FILE"; cat "$ENV_FILE"
  fi
  return "$rc"
}

cmd_reset_firestore() {  # wipe all Firestore emulator data (server.js handles SIGUSR2)
  local pid
  pid="$(live_pid firestore)" || die "firestore emulator is not running"
  kill -USR2 "$pid"
  log "firestore emulator state cleared"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  install) cmd_install ;;
  reset-firestore) cmd_reset_firestore ;;
  *) echo "usage: $0 start|stop|restart|status|install|reset-firestore" >&2; exit 2 ;;
esac
