#!/usr/bin/env bash
# fault_pgrestart.t - Postgres stopped for 10 s in the middle of a run and
# started again: the dispatcher keeps its in-flight HTTP work, reconnects,
# re-LISTENs and flushes the outcomes it buffered; every push ends sent
# exactly once in push.deliveries and the fake saw no duplicate request.
# Needs run.sh's cluster controls (PGPUSH_PGDATA...); skips without them.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"
. "$(dirname "$0")/../harness/fault.sh"

if [ -z "${PGPUSH_PGDATA:-}" ]; then
	echo "1..0 # SKIP not run by tests/harness/run.sh (no cluster control)"
	exit 0
fi
N=1500
DB=fault_pgrestart
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start
APP=$(fcm_app $DB restart ", min_concurrency, max_concurrency" ", 16, 16")
ctl POST /latency '{"provider":"fcm","distribution":"uniform","min_ms":50,"max_ms":150}' >/dev/null
enqueue_tokens $DB "$APP" rst "$N"

disp_start 1 $DB
wait_for $DB "SELECT count(*) >= 200 FROM push.deliveries" 30
ok $? "the run is under way"
pg_server_stop
ok $? "Postgres stopped mid-run"
before=$(fcm_requests_for_app rst-)
sleep 10
during=$(fcm_requests_for_app rst-)
diag "requests sent while Postgres was down: $((during - before))"
ok "$(disp_alive 1; echo $?)" "the dispatcher survived 10 s without Postgres"
pg_server_start
ok $? "Postgres started again"
wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)" 90
ok $? "the queue drains after the restart"
is "$(q $DB "SELECT count(*) || '|' || count(DISTINCT queue_id) FROM push.deliveries
             WHERE outcome = 'sent'")" "$N|$N" "every push sent exactly once"
is "$(q $DB "SELECT count(*) FROM push.deliveries WHERE outcome <> 'sent'")" 0 \
	"  nothing else recorded (no loss turned into a failure)"
is "$(fcm_requests_for_app rst-)" "$N" "the fake saw each push once: nothing sent twice"
like "$(cat "${DLOG[1]}")" 'postgres unreachable' "the daemon noticed the outage"
is "$(q $DB "SELECT state FROM push.dispatchers")" running \
	"its push.dispatchers row is running again"
# A push enqueued now is picked up by NOTIFY (the listener re-LISTENed).
enqueue_tokens $DB "$APP" late 1
wait_for $DB "SELECT count(*) = 1 FROM push.deliveries d JOIN push.devices v
              ON v.id = d.device_id WHERE v.token LIKE 'late-%' AND outcome = 'sent'" 15
ok $? "a push enqueued after the restart is sent"
disp_stop 1
fake_stop
done_testing
