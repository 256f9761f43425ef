#!/usr/bin/env bash
# dispatch_session.t - the daemon's claim and ack statements are never
# compiled with LLVM (JIT), even on a database that would JIT every query.
# A claim's generic plan is costed for the whole queue: past ~300,000
# queued rows it crosses the default jit_above_cost and every 500-row claim
# spent ~25 ms compiling (a 1,000,000-push drain ran at 13,000 pushes/s
# instead of 19,000).  The claim/ack sessions therefore set jit = off.
#
# Seen from outside through auto_explain: this database loads it into
# every session and JITs any plan (jit_above_cost = 0); the server log then
# shows a "JIT:" section under each plan that was compiled.  A psql query
# shows one (the check can see JIT); the daemon's claims and acks do not.
# And a claim that takes long (a lock on the queue) is logged as slow.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"

DB=dispatch_session
LOG=$PGHOST/server.log
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start
A=$(fcm_app $DB session-app)

q $DB "ALTER DATABASE $DB SET session_preload_libraries = 'auto_explain';
       ALTER DATABASE $DB SET auto_explain.log_min_duration = 0;
       ALTER DATABASE $DB SET auto_explain.log_nested_statements = off;
       ALTER DATABASE $DB SET jit = on;
       ALTER DATABASE $DB SET jit_above_cost = 0;
       ALTER DATABASE $DB SET jit_inline_above_cost = -1;
       ALTER DATABASE $DB SET jit_optimize_above_cost = -1" >/dev/null
start=$(wc -c <"$LOG")

# Plans logged since $start whose query text contains $1, one per line:
# "jit" or "nojit".  (An entry starts with the log line prefix's timestamp;
# its continuation lines start with a tab.)
plans_with() {
	tail -c +"$((start + 1))" "$LOG" | awk -v want="$1" '
		function emit() { if (inplan && hit) print (jit ? "jit" : "nojit") }
		/^[0-9][0-9][0-9][0-9]-/ {
			emit(); inplan = /plan:/; hit = 0; jit = 0; next }
		inplan && index($0, want) { hit = 1 }
		inplan && /^\t *JIT:/ { jit = 1 }
		END { emit() }'
}

q $DB "SELECT count(*) AS jit_control FROM push.queue" >/dev/null
is "$(plans_with jit_control | sort | uniq -c | tr -s ' ')" " 1 jit" \
	"control: a psql query on this database is compiled with JIT (logged)"

q $DB "INSERT INTO push.pushes (app_id, platform, token, payload)
       SELECT $A, 'fcm', 'session-token-' || lpad(i::text, 4, '0'),
              jsonb_build_object('title', 't' || i)
       FROM generate_series(1, 300) i" >/dev/null
MPORT=$(free_port)
slow_total() {
	curl -sS "http://127.0.0.1:$MPORT/metrics" |
		awk '$1 == "pgpush_slow_statements_total" { print $2 }'
}
daemon_start $DB --metrics-listen "127.0.0.1:$MPORT"
wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)
  AND (SELECT count(*) FROM push.deliveries WHERE outcome = 'sent') = 300" 30
ok $? "300 pushes delivered"

# A claim held up (here by a lock on the queue for 1.5 s) is counted and
# reported, with where to look (at most one warning a minute: one from a
# claim slowed by the busy machine before, unlikely, would hide it), and
# the session holding the oldest snapshot is named: here one left idle in
# a REPEATABLE READ transaction.
{ echo "BEGIN ISOLATION LEVEL REPEATABLE READ;"
  echo "SELECT count(*) FROM push.apps;"; sleep 8; } |
	PGAPPNAME=snapshot-holder psql -X -q -d $DB >/dev/null 2>&1 &
holder=$!
wait_for $DB "SELECT count(*) = 1 FROM pg_stat_activity
  WHERE application_name = 'snapshot-holder' AND backend_xmin IS NOT NULL
    AND state = 'idle in transaction'" 5
ok $? "a session sits idle in a transaction with a snapshot"
slow0=$(slow_total)
psql -X -q -d $DB -c "BEGIN" -c "LOCK TABLE push.queue" \
	-c "SELECT pg_sleep(1.5)" -c "COMMIT" >/dev/null
for i in $(seq 1 50); do
	[ "$(slow_total)" -gt "${slow0:-0}" ] 2>/dev/null && break
	sleep 0.1
done
slow1=$(slow_total)
ok "$([ "${slow1:-0}" -gt "${slow0:-0}" ]; echo $?)" \
	"pgpush_slow_statements_total counts the held-up claim (${slow0:-?} -> ${slow1:-?})"
slow=$(grep 'msg="slow claim or ack" ' "$DAEMON_LOG")
diag "${slow:-no warning}"
if [ "${slow0:-0}" -eq 0 ]; then
	like "$slow" "statement=claim ms=[1-9][0-9]{3} rows=" \
		"it is logged as a slow claim, with its time"
	is "$(printf '%s\n' "$slow" | grep -c .)" 1 "once"
else
	ok 0 "# SKIP a claim before was slow already: the warning was used"
	ok 0 "# SKIP (the same)"
fi
like "$slow" "pg_stat_activity" "the warning says where to look"
if [ "${slow0:-0}" -eq 0 ]; then
	for i in $(seq 1 30); do
		grep -q "oldest snapshot held by" "$DAEMON_LOG" && break
		sleep 0.1
	done
	who=$(grep "oldest snapshot held by" "$DAEMON_LOG")
	diag "${who:-not named}"
	like "$who" "application=snapshot-holder state=\"idle in transaction\" backend_type=\"client backend\" database=$DB open_s=[0-9]+" \
		"the warning is followed by the session holding the oldest snapshot"
else
	ok 0 "# SKIP the warning was used before"
fi
wait $holder
daemon_stop 10

claims=$(plans_with "FOR UPDATE SKIP LOCKED" | sort | uniq -c | tr -s ' ')
acks=$(plans_with "INSERT INTO push.deliveries" | sort | uniq -c | tr -s ' ')
diag "claim plans: ${claims:-none}; ack plans: ${acks:-none}"
like "$claims" "^ [0-9]+ nojit$" "every claim ran without JIT"
like "$acks" "^ [0-9]+ nojit$" "every ack ran without JIT"
fake_stop
done_testing
