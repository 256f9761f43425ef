#!/usr/bin/env bash
# fault_kill.t - kill -9 of a dispatcher at random moments while a second
# one runs: every push ends sent exactly once in push.deliveries, the killed
# processes are marked dead, and the duplicate requests the fake saw (sent,
# then killed before the ack) are bounded per kill by the window in flight
# plus one ack statement's worth (1,000) of answers not yet written back.
# The first kill comes while a lock holds every ack back for 1.5 s, so the
# answers not written pile up as far as the daemon lets them.
#
# Size: the issue's, 50,000 pushes and 10 kills (about a minute);
# FAULT_PUSHES and FAULT_KILLS make a quick run while working on it.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"
. "$(dirname "$0")/../harness/fault.sh"

N=${FAULT_PUSHES:-50000}
KILLS=${FAULT_KILLS:-10}
WINDOW=100     # the app's max_concurrency
ACK_BATCH=1000 # answers waiting for their ack that stop the sends

DB=fault_kill
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start
APP=$(fcm_app $DB kill ", min_concurrency, max_concurrency" ", 16, $WINDOW")
# A little latency so kills land with requests in flight.
ctl POST /latency '{"provider":"fcm","distribution":"uniform","min_ms":20,"max_ms":80}' >/dev/null
enqueue_tokens $DB "$APP" kill "$N"

# resent_after_kill ID: pushes dispatcher ID still held leased after it
# was killed that the fake had already answered - each is sent again.
# Both read at once (the log up to its current end): minutes later the
# other dispatcher has resent rows the killed one never sent at all.
resent_after_kill() {
	local lines
	lines=$(wc -l <"$DT/requests.log")
	q $DB "SELECT d.token FROM push.queue k
	       JOIN push.devices d ON d.id = k.device_id
	       WHERE k.lease_owner = '$1'" | sort -u >"$DT/leased"
	head -n "$lines" "$DT/requests.log" |
		grep -o '"token":"kill-token-[0-9]*"' | cut -d'"' -f4 |
		sort -u >"$DT/answered"
	comm -12 "$DT/leased" "$DT/answered" | wc -l
}

ARGS=(--lease-seconds 5 --batch-size 200)
disp_start 1 $DB "${ARGS[@]}"
disp_start 2 $DB "${ARGS[@]}"
t0=$(now_ms)
worst=0
for k in $(seq 1 "$KILLS"); do
	# 0.2 .. 1.0 s of work, then kill one of the two at random.
	sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.2 + r / 32768 * 0.8 }')"
	v=$(( RANDOM % 2 + 1 ))
	id=$(q $DB "SELECT id FROM push.dispatchers WHERE pid = ${DPID[$v]}
	            ORDER BY started_at DESC LIMIT 1")
	if [ "$k" -eq 1 ]; then
		# Acks wait behind a lock; the sends go on meanwhile.
		psql -X -q -d $DB -c "BEGIN; LOCK TABLE push.deliveries IN SHARE MODE;
		  SELECT pg_sleep(2); COMMIT" >/dev/null 2>&1 &
		lock_pid=$!
		sleep 1.5
	fi
	left=$(q $DB "SELECT count(*) FROM push.queue")
	disp_kill9 $v
	[ "$k" -eq 1 ] && wait "$lock_pid"
	# An ack the killed process had sent still commits (its backend
	# runs on): wait for the ones held by the lock, and for answers on
	# their way to reach the fake's log.
	wait_for $DB "NOT EXISTS (SELECT 1 FROM pg_stat_activity
	                          WHERE wait_event_type = 'Lock')" 10
	sleep 0.3
	r=-1
	[ -n "$id" ] && r=$(resent_after_kill "$id")
	[ "$r" -gt "$worst" ] && worst=$r
	diag "kill $k: dispatcher $v (pid ${KILLED_PIDS[-1]}), $left rows queued, $r answered but not recorded"
	disp_start $v $DB "${ARGS[@]}"
done
ok "$([ "$worst" -le $((WINDOW + ACK_BATCH)) ]; echo $?)" \
	"each kill leaves at most window + ack batch sent but unrecorded (worst $worst, window $WINDOW)"
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
diag "duplicate requests seen by the fake: $dups over $KILLS kills (in-flight window $WINDOW)"
ok "$([ "$dups" -ge 0 ] && [ "$dups" -le $((KILLS * (WINDOW + ACK_BATCH))) ]; echo $?)" \
	"duplicates ($dups) bounded by kills x (window + ack batch)"

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
