#!/usr/bin/env bash
# fault_pgdown.t - `pgpushd run` against a Postgres that is not there: it
# says so once, with what to do, and then only once per backoff step (100 ms
# doubling to 30 s) - a handful of lines, not several a second; once
# Postgres starts it connects, says so once, and delivers what was queued.
# A role or database that does not exist gets its own hint.
# Needs run.sh's cluster controls (PGPUSH_PGDATA...); skips without them.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"
. "$(dirname "$0")/../harness/fault.sh"

if [ -z "${PGPUSH_PGDATA:-}" ]; then
	echo "1..0 # SKIP not run by tests/harness/run.sh (no cluster control)"
	exit 0
fi
N=50
DB=fault_pgdown
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start
APP=$(fcm_app $DB pgdown)
enqueue_tokens $DB "$APP" down "$N"

# Problems worth a line: warnings and errors.
noisy() { grep -cE 'level=(warn|error)' "$1"; }

# --- No such role: the hint names the fix.
disp_start 1 $DB --db "dbname=$DB user=pgpush_no_such_role"
sleep 2
like "$(grep -m1 'postgres unreachable' "${DLOG[1]}")" \
	'no such role .*CREATE ROLE' "an unknown role: the log says to create it or fix user="
disp_stop 1
disp_start 1 $DB --db "dbname=pgpush_no_such_db"
sleep 2
like "$(grep -m1 'postgres unreachable' "${DLOG[1]}")" \
	'no such database .*createdb' "an unknown database: the log says to create it or fix dbname="
disp_stop 1

# --- The server is down: a few lines in 6 s, whatever the attempts.
pg_server_stop
ok $? "Postgres stopped"
disp_start 1 $DB
sleep 6
ok "$(disp_alive 1; echo $?)" "the dispatcher waits for Postgres"
n=$(noisy "${DLOG[1]}")
diag "warnings in 6 s without Postgres: $n"
grep -E 'level=(warn|error)' "${DLOG[1]}" | head -12 | cut -c1-200 | sed 's/^/#   /' >&2
ok "$([ "$n" -ge 1 ] && [ "$n" -le 9 ]; echo $?)" \
	"  at most one warning per backoff step ($n in 6 s)"
is "$(grep -c 'msg="postgres unreachable"' "${DLOG[1]}")" 1 \
	"  the outage is announced once"
like "$(grep -m1 'postgres unreachable' "${DLOG[1]}")" 'hint=.*start Postgres' \
	"  with what to do about it"
pg_server_start
ok $? "Postgres started"
wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)" 60
ok $? "the dispatcher connects and delivers what was queued"
is "$(q $DB "SELECT count(*) FROM push.deliveries WHERE outcome = 'sent'")" "$N" \
	"  every push sent once"
# The last connection may come back one backoff step (a few seconds)
# after the first has delivered everything.
for _ in $(seq 1 400); do
	grep -q 'msg="postgres reachable again"' "${DLOG[1]}" && break
	sleep 0.1
done
is "$(grep -c 'msg="postgres reachable again"' "${DLOG[1]}")" 1 \
	"  the recovery is announced once"
disp_stop 1
fake_stop
done_testing
