#!/usr/bin/env bash
# dispatch_sigterm.t - SIGTERM in the middle of a run, against a slow
# provider (100-300 ms per answer) with thousands queued: the daemon exits
# 0 within 5 s; every push is then either sent (exactly one sent delivery,
# gone from the queue) or back in push.queue with no lease; a second run
# finishes the rest, and in the end every push has exactly one sent
# delivery - nothing lost, nothing doubled.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"

DB=dispatch_sigterm
N=5000
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start
ctl POST /latency '{"provider":"fcm","distribution":"uniform","min_ms":100,"max_ms":300}' >/dev/null

APP=$(fcm_app $DB sigterm)
q $DB "INSERT INTO push.pushes (app_id, platform, token, payload)
       SELECT $APP, 'fcm', 'sigterm-token-' || lpad(i::text, 6, '0'),
              '{\"title\":\"sigterm\"}'
       FROM generate_series(1, $N) i" >/dev/null

daemon_start $DB
wait_for $DB "SELECT count(*) >= 1000 FROM push.deliveries" 30
ok $? "the first run is sending (1,000 delivered)"
daemon_stop 5
is "$DAEMON_RC" 0 "SIGTERM mid-run: exit status 0"
ok "$([ "$DAEMON_STOP_MS" -le 5000 ]; echo $?)" \
	"  within 5 s (${DAEMON_STOP_MS} ms)"

state() {
	q $DB "SELECT
	  count(*) FILTER (WHERE s = 1 AND NOT queued),
	  count(*) FILTER (WHERE s = 0 AND queued AND unleased),
	  count(*) FILTER (WHERE s > 1),
	  count(*) FILTER (WHERE s = 0 AND NOT (queued AND unleased)),
	  count(*) FILTER (WHERE s = 1 AND queued)
	FROM (SELECT p.id,
	        (SELECT count(*) FROM push.deliveries x
	         WHERE x.push_id = p.id AND x.outcome = 'sent') s,
	        EXISTS (SELECT 1 FROM push.queue k WHERE k.push_id = p.id) queued,
	        NOT EXISTS (SELECT 1 FROM push.queue k WHERE k.push_id = p.id
	                    AND (k.lease_owner IS NOT NULL
	                         OR k.lease_expires_at IS NOT NULL)) unleased
	      FROM push.pushes p) t"
}
IFS='|' read -r sent back doubled lost both <<<"$(state)"
diag "after SIGTERM: $sent sent, $back back in the queue"
is "$((sent + back))|$doubled|$lost|$both" "$N|0|0|0" \
	"every push is either sent once or back in the queue unleased"
ok "$([ "$back" -gt 0 ]; echo $?)" "  some were left for the next run ($back)"
is "$(q $DB "SELECT count(*) FROM push.deliveries WHERE outcome <> 'sent'
             AND outcome <> 'retry'")" 0 "  no push failed or dropped"
is "$(q $DB "SELECT count(*) FROM push.queue WHERE lease_owner IS NOT NULL")" 0 \
	"  no lease left behind"
is "$(q $DB "SELECT state FROM push.dispatchers")" stopped \
	"  push.dispatchers says stopped"

daemon_start $DB
wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)" 60
ok $? "a second run drains the queue"
daemon_stop 10
IFS='|' read -r sent back doubled lost both <<<"$(state)"
is "$sent|$back|$doubled|$lost|$both" "$N|0|0|0|0" \
	"in the end every push has exactly one sent delivery"
dups=$(fcm_log_tokens | awk '$2 == 200 {print $1}' | sort | uniq -d | wc -l)
is "$dups" 0 "the fake answered 200 to each token at most once"
is "$(q $DB "SELECT count(*) FROM push.dispatchers WHERE state = 'stopped'")" 2 \
	"both runs are recorded as stopped"
fake_stop
done_testing
