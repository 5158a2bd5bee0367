#!/usr/bin/env bash
# One command for the whole benchmark suite (docs/performance.md):
#   bench/run.sh [--quick] [switchboard-bench options…]
# Builds the hub and the bench in release, installs the Node peers, raises the
# open-files limit, makes sure PostgreSQL is up, and runs every workload on SQLite
# and PostgreSQL in interleaved rounds. Writes bench/results/<date>.json and .md.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '== %s\n' "$*" >&2; }

log "build (release)"
cargo build --release -p switchboard -p switchboard-bench

log "node peers"
( cd bench/peers/node
  if [ ! -d node_modules ]; then npm ci --no-audit --no-fund; fi
  # npm may skip install scripts; better-sqlite3 needs its native module.
  node -e "new (require('better-sqlite3'))(':memory:')" 2>/dev/null \
    || npm rebuild better-sqlite3 --foreground-scripts >/dev/null )

log "PostgreSQL"
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi

# 19k client sockets in this process, 19k in the server: up to the hard limit.
ulimit -n "$(ulimit -Hn)"
log "open files: $(ulimit -n); cores: $(nproc)"

exec "${CARGO_TARGET_DIR:-target}/release/switchboard-bench" all "$@"
