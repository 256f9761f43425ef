#!/usr/bin/env bash
# dispatch_fairness.t - one app's backlog does not delay another's pushes:
# with 200,000 queued for app A (one INSERT) and the fake answering every
# request slowly (50-150 ms) so the backlog lasts, pushes enqueued for
# app B are each sent within 1 s of their insert.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"

DB=dispatch_fairness
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start
# Every FCM answer takes 50-150 ms (app B's too), so app A's backlog lasts
# well beyond the test (its window is at most 256 in flight).
ctl POST /latency '{"provider":"fcm","distribution":"uniform","min_ms":50,"max_ms":150}' >/dev/null

A=$(fcm_app $DB fair-a)
B=$(fcm_app $DB fair-b)
t0=$(now_ms)
q $DB "INSERT INTO push.pushes (app_id, platform, token, payload)
       SELECT $A, 'fcm', 'fair-a-token-' || lpad(i::text, 8, '0'),
              '{\"title\":\"backlog\"}'
       FROM generate_series(1, 200000) i" >/dev/null
diag "200,000 enqueued in $(( $(now_ms) - t0 )) ms"
is "$(q $DB "SELECT count(*) FROM push.queue WHERE app_id = $A")" 200000 \
	"200,000 queued for app A"

daemon_start $DB
wait_for $DB "SELECT count(*) >= 2000 FROM push.deliveries" 60
ok $? "app A is being sent"
diag "app A so far: $(q $DB "SELECT string_agg(outcome || ':' || n || ' ' ||
  coalesce(r, ''), ', ') FROM (SELECT outcome, count(*) n,
  min(provider_reason) r FROM push.deliveries GROUP BY 1) s")"

for i in 1 2 3; do
	q $DB "INSERT INTO push.pushes (app_id, platform, token, payload)
	       VALUES ($B, 'fcm', 'fair-b-token-00$i', '{\"title\":\"b$i\"}')" \
		>/dev/null
	wait_for $DB "SELECT EXISTS (SELECT 1 FROM push.deliveries x
	              JOIN push.pushes p ON p.id = x.push_id
	              WHERE p.payload ->> 'title' = 'b$i' AND x.outcome = 'sent')" 10
	ms=$(q $DB "SELECT round(extract(epoch FROM x.finished_at - p.created_at)
	                          * 1000)
	            FROM push.deliveries x JOIN push.pushes p ON p.id = x.push_id
	            WHERE p.payload ->> 'title' = 'b$i' AND x.outcome = 'sent'")
	ok "$([ -n "$ms" ] && [ "$ms" -le 1000 ]; echo $?)" \
		"push $i for app B sent within 1 s of its insert (${ms:-never} ms)"
	sleep 0.3
done
left=$(q $DB "SELECT count(*) FROM push.queue WHERE app_id = $A")
diag "app A still queued: $left"
ok "$([ "$left" -gt 100000 ]; echo $?)" "  while app A's backlog persisted"

daemon_stop 10
fake_stop
done_testing
