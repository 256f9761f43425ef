#!/usr/bin/env bash
# fault_lease.t - leases, takeover and the sweeper, with real dispatchers:
#   a dispatcher whose requests hang past its lease loses the rows to a
#   second dispatcher, which sends and records them; the first one's late
#   acks are ignored (ACK_SQL is guarded by the lease owner): one delivery
#   row per push, written by the second, none by the first.
#   kill -9 of a dispatcher holding leases: the survivor marks it dead in
#   push.dispatchers (one sweeper at a time), frees its lapsed leases and
#   sends its pushes, each exactly once.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"
. "$(dirname "$0")/../harness/fault.sh"

DB=fault_lease
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start

APP=$(fcm_app $DB lease ", min_concurrency, max_concurrency" ", 64, 64")
N=20
enqueue_tokens $DB "$APP" slow $N
# Every token answers once after 8 s (past the 5 s lease), then at once.
token_rules slow $N '"delay_ms":8000,"times":1'

# Dispatcher 1 polls rarely (it claims on NOTIFY), so the lapsed leases go
# to dispatcher 2, not back to dispatcher 1 itself.
disp_start 1 $DB --lease-seconds 5 --request-timeout-ms 15000 \
	--poll-interval-ms 60000
wait_for $DB "SELECT count(*) = $N FROM push.queue WHERE lease_owner IS NOT NULL" 20
ok $? "dispatcher 1 leased every push"
ID1=$(q $DB "SELECT DISTINCT lease_owner FROM push.queue")
disp_start 2 $DB --lease-seconds 5 --request-timeout-ms 15000
wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)" 30
ok $? "the queue drains: dispatcher 2 took the lapsed leases over"
# Dispatcher 1's answers arrive about 8 s after its sends; give its acks
# time to be tried.
sleep 4
ID2=$(q $DB "SELECT id FROM push.dispatchers WHERE id <> '$ID1' AND state = 'running'")
is "$(q $DB "SELECT count(*) || '|' || count(DISTINCT queue_id) || '|' ||
               count(*) FILTER (WHERE outcome = 'sent') FROM push.deliveries")" \
	"$N|$N|$N" "one delivery row per push, each sent"
is "$(q $DB "SELECT count(*) FROM push.deliveries WHERE dispatcher = '$ID1'")" 0 \
	"none recorded by the dispatcher whose lease was taken over"
is "$(q $DB "SELECT count(*) FROM push.deliveries WHERE dispatcher = '$ID2'")" $N \
	"all recorded by the dispatcher that took them over"
is "$(fcm_requests_for_app slow-)" $((N * 2)) \
	"the fake saw each push twice (the duplicate bounded by the taken-over leases)"
ok "$(disp_alive 1; echo $?)" "dispatcher 1 still runs (its late acks were simply ignored)"

# kill -9 with leases held: dispatcher 1 leases 20 more (hanging) rows and
# dies; dispatcher 2 marks it dead and sends them.
disp_stop 2
token_rules dead $N '"delay_ms":8000,"times":1'
enqueue_tokens $DB "$APP" dead $N
wait_for $DB "SELECT count(*) = $N FROM push.queue WHERE lease_owner = '$ID1'" 20
ok $? "dispatcher 1 leased the new pushes"
disp_kill9 1
t0=$(now_ms)
disp_start 3 $DB --lease-seconds 5 --request-timeout-ms 15000
wait_for $DB "SELECT state = 'dead' FROM push.dispatchers WHERE id = '$ID1'" 30
ok $? "the killed dispatcher is marked dead in push.dispatchers"
like "$(q $DB "SELECT last_error FROM push.dispatchers WHERE id = '$ID1'")" \
	"no heartbeat since .*; marked dead by " "  with who marked it and why"
wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)" 30
ok $? "its pushes are rescued and sent"
diag "rescue took $(( $(now_ms) - t0 )) ms after kill -9 (lease 5 s)"
is "$(q $DB "SELECT count(*) || '|' || count(DISTINCT queue_id)
             FROM push.deliveries d JOIN push.devices v ON v.id = d.device_id
             WHERE v.token LIKE 'dead-%' AND outcome = 'sent'")" "$N|$N" \
	"each exactly once"
like "$(cat "${DLOG[3]}")" "leases of dead dispatchers freed|dispatcher marked dead" \
	"the sweeper logged what it did"
disp_stop 3
fake_stop
done_testing
