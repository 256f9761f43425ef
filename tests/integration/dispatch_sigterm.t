#!/usr/bin/env bash
# dispatch_sigterm.t - SIGTERM in the middle of a run, against a slow
# provider (100-300 ms per answer) with thousands queued: the daemon exits
# 0 within 5 s; every push is then either sent (exactly one sent delivery,
# gone from the queue) or back in push.queue with no lease; a second run
# finishes the rest, and in the end every push has exactly one sent
# delivery - nothing lost, nothing doubled.
#
# Then a matrix: for each --h2-direct 0|1 x --http-threads 0|2, pushes to
# every platform (FCM, APNs, WNS, MPNS) whose answers take 8 s, SIGTERM
# with --drain-timeout-ms 1000, so every request in flight is cancelled:
# the daemon exits 0 with no sanitizer report, leaves no lease behind and
# loses nothing (each push is back in the queue or recorded), and a second
# run delivers every one of them.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"
. "$(dirname "$0")/../harness/apns.sh"
. "$(dirname "$0")/../harness/msft.sh"

DB=dispatch_sigterm
N=5000
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
apns_fake_start "$WNS_FAKE_CLIENT" --apns-jwt-min-refresh 0
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

# ---- Requests outliving the drain, every platform and HTTP client mode.
ctl POST /latency '{"max_ms":0}' >/dev/null
K=6                 # pushes per platform and mode
FA=$(fcm_app $DB slow-fcm)
AA=$(apns_app $DB slow-apns)
WA=$(wns_app $DB slow-wns)
MA=$(mpns_app $DB slow-mpns)

# slow_tokens MODE: devices and pushes for every platform, each answered
# after 8 s the first time (then at once).
slow_tokens() {
	local m=$1 i t rules=
	for i in $(seq 1 $K); do
		t=slow-$m-token-$i
		q $DB "INSERT INTO push.devices (app_id, platform, token) VALUES
		  ($FA, 'fcm', '$t'), ($AA, 'apns', '$(apns_tok "$t")'),
		  ($WA, 'wns', '$(wns_channel "$t")'),
		  ($MA, 'mpns', '$(mpns_channel "$t")')" >/dev/null
		for pr in fcm wns mpns; do
			rules+="{\"provider\":\"$pr\",\"token\":\"$t\",\"delay_ms\":8000,\"times\":1},"
		done
		rules+="{\"provider\":\"apns\",\"token\":\"$(apns_tok "$t")\",\"delay_ms\":8000,\"times\":1},"
	done
	r=$(ctl POST /rules "[${rules%,}]")
	case $r in *error*) echo "Bail out! rules: $r"; exit 1 ;; esac
	q $DB "INSERT INTO push.pushes (app_id, device_id, payload)
	       SELECT app_id, id, '{\"title\":\"$m\",\"body\":\"b\"}'
	       FROM push.devices d WHERE app_id IN ($FA, $AA, $WA, $MA)
	         AND NOT EXISTS (SELECT 1 FROM push.pushes p
	                         WHERE p.device_id = d.id)" >/dev/null
}

# slow_state MODE: "leased|lost|sent once|sent twice" for MODE's pushes;
# lost = neither in the queue nor recorded as sent.
slow_state() {
	q $DB "SELECT
	  count(*) FILTER (WHERE leased),
	  count(*) FILTER (WHERE NOT queued AND s = 0),
	  count(*) FILTER (WHERE s = 1), count(*) FILTER (WHERE s > 1)
	FROM (SELECT p.id,
	        (SELECT count(*) FROM push.deliveries x
	         WHERE x.push_id = p.id AND x.outcome = 'sent') s,
	        EXISTS (SELECT 1 FROM push.queue k WHERE k.push_id = p.id) queued,
	        EXISTS (SELECT 1 FROM push.queue k WHERE k.push_id = p.id
	                AND (k.lease_owner IS NOT NULL
	                     OR k.lease_expires_at IS NOT NULL)) leased
	      FROM push.pushes p WHERE p.payload->>'title' = '$1') t"
}

for h2d in 1 0; do
	for th in 0 2; do
		m=h$h2d-t$th
		slow_tokens $m
		MODE_ARGS=(--h2-direct $h2d --http-threads $th)
		daemon_start $DB "${MODE_ARGS[@]}" --drain-timeout-ms 1000
		wait_for $DB "SELECT coalesce(sum(in_flight), 0) >= $((4 * K))
		              FROM push.dispatchers WHERE state = 'running'" 30
		ok $? "$m: $((4 * K)) slow requests in flight (FCM, APNs, WNS, MPNS)"
		daemon_stop 10
		IFS='|' read -r leased lost once twice <<<"$(slow_state $m)"
		is "$leased|$lost|$twice" "0|0|0" \
			"$m: after the drain timeout no lease is left and nothing lost"
		is "$(q $DB "SELECT count(*) FROM push.deliveries x
		             JOIN push.pushes p ON p.id = x.push_id
		             WHERE p.payload->>'title' = '$m'
		               AND x.outcome NOT IN ('sent', 'retry')")" 0 \
			"$m:   the cancelled requests are retries, nothing failed"
		daemon_start $DB "${MODE_ARGS[@]}"
		wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)" 30
		ok $? "$m: a second run sends what was cancelled"
		daemon_stop 10
		IFS='|' read -r leased lost once twice <<<"$(slow_state $m)"
		is "$once|$leased|$lost|$twice" "$((4 * K))|0|0|0" \
			"$m:   every push has exactly one sent delivery"
	done
done
fake_stop
done_testing
