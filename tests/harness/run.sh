#!/usr/bin/env bash
# run.sh — the test harness behind `make test`.
#
# Starts a throwaway PostgreSQL cluster (initdb in a temp dir, its own port
# number and Unix socket directory, no TCP listener), migrates a template
# database with build/pgpushd, then runs every suite through one `prove`:
#   build/tests/unit/**/test_*   C unit tests (TAP executables)
#   tests/sql/*.sql           pgTAP tests; each runs in one transaction that
#                             is rolled back, on the shared database
#                             pgpush_test (a copy of the template)
#   tests/integration/*.t     bash TAP scenarios; each makes its own database
#                             from the template (tests/harness/lib.sh)
#   tests/fakes/t/*.t         self-tests of the fake provider servers
# The cluster is stopped and its directory removed on exit, even on failure
# or ^C. It never touches a server it did not start. Postgres refuses to run
# as root, so as root the server runs as the unprivileged `postgres` account
# (created by Debian's postgresql package) or, failing that, `pgpush-test`.
#
# Arguments, if any, replace the list of test files (e.g. one file).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

pg_bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null |
	sort -V | tail -n 1)}
if [ ! -x "$pg_bindir/initdb" ]; then
	echo "run.sh: no PostgreSQL server found (initdb); run 'make deps'" >&2
	exit 1
fi

# Every program the tests call: a missing one is named here, once, instead
# of surfacing as a pile of unrelated-looking failures later.
missing=
for prog in psql createdb dropdb prove perl curl openssl nghttp awk sed \
	timeout bc ss; do
	command -v "$prog" >/dev/null 2>&1 || missing="$missing $prog"
done
perl -MJSON::PP -MIO::Socket::INET -e 1 2>/dev/null ||
	missing="$missing perl(JSON::PP)"
[ -x "$pg_bindir/pg_ctl" ] || missing="$missing pg_ctl"
if [ -n "$missing" ]; then
	echo "run.sh: missing programs:$missing; run 'make deps'" \
		"(or ./pgpush deps) to install them" >&2
	exit 1
fi

tmp=$(mktemp -d /tmp/pgpush-test.XXXXXX)
chmod 755 "$tmp"
server_user=
as_server() { "$@"; }
if [ "$(id -u)" -eq 0 ]; then
	if id postgres >/dev/null 2>&1; then
		server_user=postgres
	else
		id pgpush-test >/dev/null 2>&1 ||
			useradd --system --no-create-home pgpush-test
		server_user=pgpush-test
	fi
	chown "$server_user" "$tmp"
	as_server() { runuser -u "$server_user" -- env -C / "$@"; }
fi

cleanup() {
	local rc=$?
	if [ -f "$tmp/data/postmaster.pid" ]; then
		as_server "$pg_bindir/pg_ctl" -D "$tmp/data" -m immediate \
			stop >/dev/null 2>&1 || true
	fi
	if [ $rc -ne 0 ] && [ -s "$tmp/server.log" ]; then
		echo "run.sh: last lines of the server log:" >&2
		tail -n 20 "$tmp/server.log" >&2 || true
	fi
	rm -rf "$tmp"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$((20000 + RANDOM % 20000))
as_server "$pg_bindir/initdb" -D "$tmp/data" -A trust -U postgres \
	-E UTF8 --no-locale --no-sync >"$tmp/initdb.log" 2>&1 || {
	cat "$tmp/initdb.log" >&2; exit 1; }
pg_opts="-p $port -k $tmp -c listen_addresses='' -c fsync=off \
	    -c synchronous_commit=off -c full_page_writes=off \
	    -c max_connections=100 -c shared_buffers=256MB \
	    -c max_wal_size=4GB -c log_min_messages=warning \
	    -c log_checkpoints=off"
as_server "$pg_bindir/pg_ctl" -D "$tmp/data" -w -t 60 -l "$tmp/server.log" \
	-o "$pg_opts" start >/dev/null

export PGHOST=$tmp PGPORT=$port PGUSER=postgres PGDATABASE=postgres
export PGPUSH_TEMPLATE_DB=pgpush_template
export PGPUSHD=$top/build/pgpushd
export PGPUSH_TOP=$top
# For the fault suite (tests/harness/fault.sh): how to stop and start this
# cluster again with the same options.
export PGPUSH_PGDATA=$tmp/data PGPUSH_PG_BINDIR=$pg_bindir
export PGPUSH_PGLOG=$tmp/server.log
export PGPUSH_PG_OPTS=$pg_opts
export PGPUSH_AS_SERVER=${server_user:+runuser -u $server_user -- env -C /}
unset PGPASSWORD PGSERVICE PGOPTIONS

createdb "$PGPUSH_TEMPLATE_DB"
"$PGPUSHD" migrate --db "dbname=$PGPUSH_TEMPLATE_DB" \
	--migrations-dir "$top/migrations" >"$tmp/migrate.log" 2>&1 || {
	cat "$tmp/migrate.log" >&2; exit 1; }
psql -X -q -d "$PGPUSH_TEMPLATE_DB" -c 'CREATE EXTENSION pgtap' >/dev/null
createdb -T "$PGPUSH_TEMPLATE_DB" pgpush_test

if [ $# -gt 0 ]; then
	files=("$@")
else
	# The unit-test executables (not their .o/.d/logs), then the scripts.
	mapfile -t files < <(find build/tests/unit -type f \
		-name 'test_*' -perm -u+x 2>/dev/null | sort)
	shopt -s nullglob
	files+=(tests/sql/*.sql tests/integration/*.t tests/fakes/t/*.t)
	shopt -u nullglob
fi

prove ${PROVE_FLAGS:-} --timer \
	--source Executable --source Perl --source pgTAP \
	--pgtap-option "dbname=pgpush_test" --pgtap-option "host=$PGHOST" \
	--pgtap-option "port=$PGPORT" --pgtap-option "username=postgres" \
	"${files[@]}"
