#!/usr/bin/env bash
# fault_hang.t - a hung provider (accepts, never answers) for a few
# seconds: request timeouts fire and the pushes are retried, not lost;
# after --rebuild-after-ms of nothing but transport errors the dispatcher
# opens fresh connections for the provider (each request on a new
# connection, not kept) until it answers again; then every push is sent
# exactly once and connections are reused again.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"
. "$(dirname "$0")/../harness/fault.sh"

DB=fault_hang
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start
# Auto-ban off: this test is about the connections, not the cup.
APP=$(fcm_app $DB hang ", autoban_enabled, min_concurrency" ", false, 4")
N=30
disp_start 1 $DB --request-timeout-ms 800 --rebuild-after-ms 2000
sleep 1
r=$(ctl POST /mode '{"provider":"fcm","delay_ms":600000,"seconds":6}')
case $r in *error*) echo "Bail out! mode: $r"; exit 1 ;; esac
t0=$(now_ms)
enqueue_tokens $DB "$APP" hang $N
wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)" 60
ok $? "the queue drains once the provider answers again"
diag "drained $(( $(now_ms) - t0 )) ms after the hang began (6 s)"
is "$(q $DB "SELECT count(*) || '|' || count(DISTINCT queue_id) FROM push.deliveries
             WHERE outcome = 'sent'")" "$N|$N" "every push sent exactly once"
ok "$([ "$(q $DB "SELECT count(*) FROM push.deliveries WHERE outcome = 'retry'
               AND provider_status IS NULL")" -gt 0 ]; echo $?)" \
	"timed-out attempts were recorded as retries"
is "$(q $DB "SELECT bool_and(retry_at >= finished_at) FROM push.deliveries
             WHERE outcome = 'retry'")" t "  each retry scheduled, not immediate looping"
like "$(cat "${DLOG[1]}")" 'only transport errors: rebuilding connections' \
	"after 2 s of nothing but timeouts the connections are rebuilt"
like "$(cat "${DLOG[1]}")" 'provider answers again: connections reused' \
	"and reused again once the provider answers"
is "$(q $DB "SELECT banned_until IS NULL FROM push.apps WHERE id = $APP")" t \
	"autoban_enabled false: not banned"
ok "$(disp_alive 1; echo $?)" "the dispatcher kept running"
disp_stop 1
fake_stop
done_testing
