#!/usr/bin/env bash
# db_async.t - the async PostgreSQL layer (dispatcher/db/db_async.c) against a
# real server: the unit binary's own checks, then the fault it cannot make
# by itself: its backend terminated by an admin (pg_terminate_backend),
# once while a query is in flight and once while it idles in LISTEN.  The
# binary (test_db_async --reconnect-scenario) checks from the inside that
# the in-flight query fails as "connection lost", the queued one as "not
# sent", that it reconnects with backoff, re-LISTENs and re-prepares; this
# script makes the faults and checks from the server's side.
. "$(dirname "$0")/../harness/lib.sh"
plan 12

bin=${TEST_DB_ASYNC:-$PGPUSH_TOP/build/tests/unit/db/test_db_async}
app=pgpush_db_async_reconnect
tmp=$(mktemp -d)
scenario=
trap '[ -n "$scenario" ] && kill "$scenario" 2>/dev/null; rm -rf "$tmp";
      _tap_finish' EXIT
export PGDATABASE=postgres

"$bin" >"$tmp/unit.out" 2>"$tmp/unit.err"
ok $? "test_db_async passes against the server"
is "$(grep -c '^not ok' "$tmp/unit.out")" 0 "with no failed check"

# wait_backend STATE QUERY - until this app's session is in STATE running
# QUERY (the last statement it sent); 30 s at most.
wait_backend() {
	local i
	for i in $(seq 300); do
		[ "$(q postgres "SELECT count(*) FROM pg_stat_activity
			WHERE application_name = '$app' AND state = '$1'
			AND query = \$q\$$2\$q\$")" = 1 ] && return 0
		sleep 0.1
	done
	return 1
}

# terminate - kill this app's backend(s) as an admin would; prints how
# many were terminated.  (The function must stay in the select list: in
# WHERE the planner may call it before the application_name filter.)
terminate() {
	q postgres "SELECT count(*) FILTER (WHERE t) FROM (
		SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity
		WHERE application_name = '$app') s"
}

"$bin" --reconnect-scenario >"$tmp/out" 2>"$tmp/err" &
scenario=$!

wait_backend active 'SELECT pg_sleep(60)'
ok $? "the scenario has a query in flight"
is "$(terminate)" 1 "its backend is terminated mid-query"

wait_backend idle "SELECT 'phase2'"
ok $? "it reconnected, re-listened, and idles"
is "$(terminate)" 1 "its idle backend is terminated"

wait "$scenario"
ok $? "the scenario binary exits 0"
scenario=
is "$(grep -c '^ok' "$tmp/out")" \
   "$(sed -n 's/^1\.\.//p' "$tmp/out")" "every step of the scenario passed"
grep '^not ok' "$tmp/out" | sed 's/^/# /'
like "$(cat "$tmp/out")" "ok [0-9]+ - reported as connection lost" \
     "the in-flight query was reported as connection lost"
like "$(cat "$tmp/out")" "ok [0-9]+ - a NOTIFY after the reconnect arrives" \
     "a NOTIFY after the reconnect arrived (re-LISTEN)"
like "$(cat "$tmp/out")" "ok [0-9]+ - re-prepared on the new session" \
     "its statement was re-prepared"
ok "$(grep -ciE 'AddressSanitizer|runtime error|LeakSanitizer' \
	"$tmp/err" "$tmp/unit.err" | awk -F: '{s += $NF} END {print s}')" \
   "no sanitizer report"
