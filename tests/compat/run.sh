#!/usr/bin/env bash
# Compatibility tests: the old Audotics app's database calls, made through the
# real Prisma 7 client, against a real hub on the same Postgres.
#
# Installs what is missing (npm ci into node_modules), generates the Prisma
# client from tests/fixtures/schema.prisma (offline: see README.md), builds the
# hub unless HUB_BIN is given, starts a throwaway PostgreSQL cluster (initdb +
# pg_ctl, Unix socket only, run as `postgres` when we are root, removed at
# exit), then runs every test file with `node --test` and exits with its
# status. Each test file creates its own database in that cluster and starts
# its own hub on it. Hub and Postgres logs land in tests/compat/artifacts/.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$HERE"

# ---------------------------------------------------------------- npm packages
if [ ! -x node_modules/.bin/prisma ] || [ ! -d node_modules/@prisma/adapter-pg ] \
   || ! cmp -s package-lock.json node_modules/.package-lock.json.ci 2>/dev/null; then
  echo "compat tests: npm ci" >&2
  # --ignore-scripts: @prisma/engines' postinstall would try to download the
  # schema-engine binary from Prisma's servers; nothing here needs it.
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.package-lock.json.ci
fi

# ---------------------------------------------------------------- Prisma client
# The CLI insists on a schema-engine binary even for `generate`, which never
# runs it; point it at a stand-in that fails loudly if anything ever does.
export PRISMA_SCHEMA_ENGINE_BINARY="$HERE/bin/schema-engine-unavailable"
export CHECKPOINT_DISABLE=1 PRISMA_HIDE_UPDATE_MESSAGE=1
mkdir -p generated
cp "$ROOT/tests/fixtures/schema.prisma" generated/schema.prisma
node_modules/.bin/prisma generate >generated/generate.log 2>&1 || {
  cat generated/generate.log >&2
  echo "compat tests: prisma generate failed" >&2
  exit 1
}

# ---------------------------------------------------------------- the hub
if [ -z "${HUB_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --bin audotics-hub)
  TARGET_DIR="$(cd "$ROOT" && cargo metadata --no-deps --format-version 1 \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
  export HUB_BIN="$TARGET_DIR/debug/audotics-hub"
fi
[ -x "$HUB_BIN" ] || { echo "compat tests: no hub binary at $HUB_BIN" >&2; exit 1; }

# ---------------------------------------------------------------- Postgres
find_pg_bin() {
  local d
  if command -v initdb >/dev/null 2>&1; then
    d="$(dirname "$(readlink -f "$(command -v initdb)")")"
    [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] && { echo "$d"; return; }
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return; }
  done
  echo "compat tests: PostgreSQL server binaries not found (apt-get install -y postgresql)" >&2
  exit 1
}
PG_BIN="$(find_pg_bin)"

rm -rf artifacts && mkdir -p artifacts
PG_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/audotics-compat.XXXXXX")"
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  # Postgres refuses to run as root.
  chown postgres "$PG_ROOT"
  as_owner=(runuser -u postgres --)
fi
stop_pg() {
  "${as_owner[@]}" "$PG_BIN/pg_ctl" stop -D "$PG_ROOT/data" -m fast -w >/dev/null 2>&1 || true
  cp "$PG_ROOT/postgres.log" artifacts/postgres.log 2>/dev/null || true
  rm -rf "$PG_ROOT"
}
trap stop_pg EXIT
"${as_owner[@]}" mkdir -m 700 "$PG_ROOT/run"
"${as_owner[@]}" env LC_ALL=C "$PG_BIN/initdb" -D "$PG_ROOT/data" -U audotics --auth=trust \
  --encoding=UTF8 --no-locale --no-instructions >/dev/null
"${as_owner[@]}" "$PG_BIN/pg_ctl" start -w -t 60 -D "$PG_ROOT/data" -l "$PG_ROOT/postgres.log" \
  -o "-k $PG_ROOT/run -c listen_addresses= -c max_connections=200 -c fsync=off -c full_page_writes=off" >/dev/null
# Each test file makes its own database: postgres://audotics@localhost/<db>?host=<socket dir>
export COMPAT_PG_SOCKET="$PG_ROOT/run"
export COMPAT_ARTIFACTS="$HERE/artifacts"

# ---------------------------------------------------------------- the tests
# One file at a time (2 cores; each file runs a hub). Node's runner prints its
# summary (tests / pass / fail) and exits non-zero when any test fails.
# Arguments, if any, pick test files (e.g. `run.sh test/b-accounts.test.js`).
if [ $# -gt 0 ]; then files=("$@"); else files=("$HERE"/test/*.test.js); fi
set +e
node --test --test-concurrency=1 --test-reporter=spec --test-timeout=120000 "${files[@]}"
status=$?
set -e
exit $status
