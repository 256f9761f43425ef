#!/usr/bin/env bash
# fault_kill.t - kill -9 of a dispatcher at random moments while a second
# one runs: every push ends sent exactly once in push.deliveries, the killed
# processes are marked dead, and the duplicate requests the fake saw (sent,
# then killed before the ack) are reported and bounded by the in-flight
# window.
#
# Size: the issue's, 50,000 pushes and 10 kills (about a minute);
# FAULT_PUSHES and FAULT_KILLS make a quick run while working on it.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"
. "$(dirname "$0")/../harness/fault.sh"

N=${FAULT_PUSHES:-50000}
KILLS=${FAULT_KILLS:-10}
WINDOW=100     # the app's max_concurrency

DB=fault_kill
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start
APP=$(fcm_app $DB kill ", min_concurrency, max_concurrency" ", 16, $WINDOW")
# A little latency so kills land with requests in flight.
ctl POST /latency '{"provider":"fcm","distribution":"uniform","min_ms":20,"max_ms":80}' >/dev/null
enqueue_tokens $DB "$APP" kill "$N"

ARGS=(--lease-seconds 5 --batch-size 200)
disp_start 1 $DB "${ARGS[@]}"
disp_start 2 $DB "${ARGS[@]}"
t0=$(now_ms)
for k in $(seq 1 "$KILLS"); do
	# 0.2 .. 1.0 s of work, then kill one of the two at random.
	sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.2 + r / 32768 * 0.8 }')"
	v=$(( RANDOM % 2 + 1 ))
	left=$(q $DB "SELECT count(*) FROM push.queue")
	disp_kill9 $v
	diag "kill $k: dispatcher $v (pid ${KILLED_PIDS[-1]}), $left rows queued"
	disp_start $v $DB "${ARGS[@]}"
done
wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)" 180
ok $? "the queue drains after $KILLS kills"
diag "run took $(( $(now_ms) - t0 )) ms for $N pushes"

is "$(q $DB "SELECT count(*) FROM (SELECT queue_id FROM push.deliveries
             WHERE outcome <> 'retry' GROUP BY queue_id HAVING count(*) > 1) x")" 0 \
	"no push has two final outcomes"
is "$(q $DB "SELECT count(DISTINCT queue_id) FROM push.deliveries
             WHERE outcome = 'sent'")" "$N" "every push is sent exactly once"
is "$(q $DB "SELECT count(*) FROM push.deliveries WHERE outcome NOT IN ('sent')")" 0 \
	"  and nothing else (no failure, no retry row)"

requests=$(fcm_requests_for_app kill-token-)
dups=$((requests - N))
diag "duplicate requests seen by the fake: $dups over $KILLS kills (in-flight window $WINDOW, ack batch 1000)"
ok "$([ "$dups" -ge 0 ] && [ "$dups" -le $((KILLS * (WINDOW * 4 + 1000))) ]; echo $?)" \
	"duplicates ($dups) bounded by kills x (ring + unwritten acks)"

pids=$(IFS=,; echo "${KILLED_PIDS[*]}")
wait_for $DB "SELECT count(*) = $KILLS FROM push.dispatchers
              WHERE pid IN ($pids) AND state = 'dead'" 30
ok $? "every killed dispatcher is marked dead in push.dispatchers"
is "$(q $DB "SELECT count(*) FROM push.dispatchers WHERE state = 'running'")" 2 \
	"the two live ones are running"
disp_stop 1
disp_stop 2
fake_stop
done_testing
