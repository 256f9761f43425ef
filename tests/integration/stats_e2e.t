#!/usr/bin/env bash
# stats_e2e.t - statistics end to end through pgpushd and the fake FCM: a
# scripted run with known outcomes (sent, slow sent, UNREGISTERED, a 400
# failure, pushes of a banned app, a small campaign, one debug push) and
# then:
#   - the analysts' views return exactly the counts of push.deliveries
#     (by outcome and by provider reason), percentiles within one histogram
#     bucket of the true value, the campaign funnel, outcomes by app
#     version, token churn;
#   - the Prometheus endpoint (--metrics-listen) answers valid exposition
#     text whose counters equal the database's, 404 elsewhere;
#   - the debug push has every step in push.debug_events, in order; the
#     others have none; no secret of the test credentials is in any trace;
#   - the daemon ran the maintenance (partitions ahead exist), heartbeats
#     its interval, shows live, then stopped;
#   - outcomes decided at enqueue (a user without a device, a device already
#     invalidated) count in the funnel and the app views at once, and after
#     push.run_maintenance() push.stats_minute equals push.deliveries
#     outcome by outcome, those included.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"

DB=stats_e2e
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start

APP=$(fcm_app $DB stats-shop)
BANNED=$(fcm_app $DB stats-banned ", banned_until, ban_reason" \
	", now() + interval '1 hour', 'test ban'")
tok() { printf 'stats-%s-token-%04d' "$1" "$2"; }
q $DB "
  INSERT INTO push.devices (app_id, platform, token, app_version, os_version,
                            device_model, timezone)
  SELECT $APP, 'fcm', 'stats-ok-token-' || lpad(i::text, 4, '0'),
         CASE WHEN i <= 20 THEN '3.1' ELSE '3.0' END, 'android-14',
         'Pixel ' || (i % 3), 'Europe/Berlin'
  FROM generate_series(1, 30) i;
  INSERT INTO push.devices (app_id, platform, token, app_version)
  SELECT $APP, 'fcm', 'stats-' || k || '-token-' || lpad(i::text, 4, '0'),
         '3.1'
  FROM generate_series(1, 5) i, unnest(ARRAY['unreg', 'bad', 'slow']) k
  WHERE k = 'slow' OR (k = 'unreg' AND i <= 3) OR (k = 'bad' AND i <= 2);
  INSERT INTO push.devices (app_id, platform, token)
  SELECT $BANNED, 'fcm', 'stats-banned-token-' || lpad(i::text, 4, '0')
  FROM generate_series(1, 4) i;" >/dev/null

rule() {
	local r
	r=$(ctl POST /rules "{\"provider\":\"fcm\",\"token\":\"$1\",$2}")
	case $r in *error*) echo "Bail out! rule $1: $r"; exit 1 ;; esac
}
for i in 1 2 3; do rule "$(tok unreg $i)" '"status":404,"reason":"UNREGISTERED"'; done
bad_body='{"error":{"code":400,"message":"Invalid value at '"'"'message.android.ttl'"'"'","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"},{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.android.ttl","description":"Invalid duration"}]}]}}'
bad_json=$(printf '%s' "$bad_body" | perl -MJSON::PP -0777 -ne 'print JSON::PP->new->allow_nonref->encode($_)')
for i in 1 2; do
	rule "$(tok bad $i)" "\"status\":400,\"reason\":\"INVALID_ARGUMENT\",\"body\":$bad_json"
done
for i in 1 2 3 4 5; do rule "$(tok slow $i)" '"delay_ms":300'; done

MPORT=$(free_port)
tomorrow=$(q $DB "SELECT 'deliveries_' || to_char((now() AT TIME ZONE 'UTC')::date + 1, 'YYYYMMDD')")
# The migration made it; without it, the daemon's maintenance makes it again.
q $DB "DROP TABLE IF EXISTS push.$tomorrow" >/dev/null
is "$(q $DB "SELECT to_regclass('push.$tomorrow') IS NULL")" t \
	"before the daemon: no partition for tomorrow"

daemon_start $DB --metrics-listen "127.0.0.1:$MPORT"
wait_for $DB "SELECT live FROM push.dispatcher_health
              WHERE pid = $DAEMON_PID" 10
ok $? "push.dispatcher_health shows the daemon live"
ID=$(q $DB "SELECT id FROM push.dispatchers WHERE pid = $DAEMON_PID")
is "$(q $DB "SELECT heartbeat_interval_ms FROM push.dispatchers
             WHERE id = '$ID'")" 200 "its heartbeat interval is recorded"
wait_for $DB "SELECT to_regclass('push.$tomorrow') IS NOT NULL" 10
ok $? "the daemon ran the maintenance: tomorrow's partition exists"

# A campaign of 3 targets, all enqueued.
CAMP=$(q $DB "INSERT INTO push.campaigns (app_id, name, payload_template,
              state) VALUES ($APP, 'stats-camp', '{\"title\": \"hi\"}',
              'running') RETURNING id")
q $DB "
  INSERT INTO push.campaign_targets (campaign_id, user_id, enqueued_at)
  SELECT $CAMP, 'cu' || i, now() FROM generate_series(1, 3) i;
  INSERT INTO push.pushes (app_id, device_id, payload, campaign_id)
  SELECT $APP, id, '{\"title\": \"camp\"}', $CAMP FROM push.devices
  WHERE token IN ('stats-ok-token-0001', 'stats-ok-token-0002',
                  'stats-ok-token-0003');
  INSERT INTO push.pushes (app_id, device_id, payload, debug)
  SELECT app_id, id, '{\"title\": \"debug me\"}',
         token = 'stats-ok-token-0030'
  FROM push.devices WHERE app_id IN ($APP, $BANNED);" >/dev/null
DEBUG_PUSH=$(q $DB "SELECT id FROM push.pushes WHERE debug")

# 33 + 3 + 2 + 5 + 4 = 47 pushes, 47 final outcomes.
wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)
  AND (SELECT count(*) FROM push.deliveries WHERE outcome <> 'retry') >= 47
  AND (SELECT sum(count) FROM push.stats_minute) =
      (SELECT count(*) FROM push.deliveries)" 60
ok $? "every push finished and the stats caught up with the deliveries"
wait_for $DB "SELECT EXISTS (SELECT 1 FROM push.debug_events
                             WHERE step = 'acked')" 10
ok $? "the debug push's trace was written"

is "$(q $DB "SELECT string_agg(outcome || '=' || n, ' ' ORDER BY outcome)
             FROM (SELECT outcome, count(*) n FROM push.deliveries
                   GROUP BY 1) x")" \
   "sent=38 failed=2 invalid_token=3 dropped_banned=4" \
   "deliveries: 38 sent, 2 failed, 3 invalid tokens, 4 dropped (ban)"

# The views agree with the deliveries, exactly.
is "$(q $DB "SELECT sum(sent) || ' ' || sum(failed) || ' ' ||
             sum(invalid_token) || ' ' || sum(dropped_banned) || ' ' ||
             sum(total) FROM push.app_stats_hourly WHERE app_id = $APP")" \
   "38 2 3 0 43" "app_stats_hourly: 38 sent, 2 failed, 3 invalidated"
is "$(q $DB "SELECT sum(dropped_banned) || ' ' || sum(sent)
             FROM push.app_stats_daily WHERE app_id = $BANNED")" "4 0" \
   "app_stats_daily: the banned app's 4 pushes dropped"
is "$(q $DB "SELECT sum(attempts) FROM push.app_stats_daily
             WHERE app_id = $APP")" \
   "$(q $DB "SELECT count(*) FROM push.deliveries
             WHERE app_id = $APP AND sent_at IS NOT NULL")" \
   "attempts equal the requests sent"
is "$(q $DB "SELECT (SELECT jsonb_object_agg(k, v ORDER BY k) FROM
               (SELECT k, sum(v::bigint) v FROM push.app_stats_hourly,
                  jsonb_each_text(failed_by_reason) AS e(k, v)
                WHERE app_id = $APP GROUP BY k) x)::text")" \
   "$(q $DB "SELECT jsonb_object_agg(r, n ORDER BY r)::text FROM
             (SELECT coalesce(provider_reason, outcome::text) r, count(*) n
              FROM push.deliveries WHERE app_id = $APP
                AND outcome IN ('failed', 'invalid_token') GROUP BY 1) x")" \
   "failed_by_reason: the deliveries' reasons and counts"
like "$(q $DB "SELECT failed_by_reason::text FROM push.app_stats_hourly
               WHERE app_id = $APP AND invalid_token > 0")" \
   '"UNREGISTERED": 3' "  3 UNREGISTERED among them"

# Percentiles from the histogram: within one bucket of the true value.
bucket() { # bucket MS -> index of the histogram bucket holding MS
	q $DB "SELECT coalesce((SELECT min(i) FROM unnest(push.latency_bounds_ms())
	       WITH ORDINALITY b(v, i) WHERE $1 <= v), 16)"
}
for p in 0.5 0.95 0.99; do
	true_ms=$(q $DB "SELECT percentile_disc($p) WITHIN GROUP
	                 (ORDER BY latency_ms) FROM push.deliveries
	                 WHERE app_id = $APP AND latency_ms IS NOT NULL")
	view_ms=$(q $DB "SELECT push.hist_percentile(push.hist_merge(latency_hist),
	                 $p) FROM push.stats_all WHERE app_id = $APP")
	col=$(printf 'latency_ms_p%s' "${p#0.}" | sed 's/p5$/p50/')
	day_ms=$(q $DB "SELECT $col FROM push.app_stats_daily
	                WHERE app_id = $APP ORDER BY day DESC LIMIT 1")
	bt=$(bucket "$true_ms"); bv=$(bucket "$view_ms")
	d=$((bt - bv)); d=${d#-}
	ok "$([ "$d" -le 1 ] && echo 0 || echo 1)" \
	   "p$p: histogram says $view_ms ms, the deliveries $true_ms ms (within one bucket)"
	[ "$(q $DB "SELECT count(DISTINCT date_trunc('day', finished_at))
	            FROM push.deliveries")" = 1 ] &&
		is "$day_ms" "$view_ms" "  app_stats_daily shows the same p$p"
done

is "$(q $DB "SELECT targets || ' ' || queued || ' ' || sent || ' ' || failed
             FROM push.campaign_funnel WHERE campaign_id = $CAMP")" \
   "3 3 3 0" "campaign_funnel: 3 targets, 3 queued, 3 sent"
is "$(q $DB "SELECT string_agg(value || ':' || sent || '/' ||
                    devices_reached || '/' || invalid_token || '/' || failed,
                    ' ' ORDER BY value)
             FROM (SELECT value, sum(sent) sent, sum(devices_reached)
                     devices_reached, sum(invalid_token) invalid_token,
                     sum(failed) failed
                   FROM push.outcomes_by_device
                   WHERE app_id = $APP AND attribute = 'app_version'
                   GROUP BY value) x")" \
   "3.0:10/10/0/0 3.1:28/25/3/2" \
   "outcomes_by_device: sent/reached/invalidated/failed by app version"
is "$(q $DB "SELECT sum(invalidations) || ' ' || sum(registrations)
             FROM push.token_churn_daily WHERE app_id = $APP")" "3 40" \
   "token_churn_daily: 40 registrations, 3 invalidations"

# The metrics endpoint.
curl -sS -D "$DT/mh" -o "$DT/metrics" "http://127.0.0.1:$MPORT/metrics"
ok $? "GET /metrics answers"
like "$(head -1 "$DT/mh")" "HTTP/1.1 200" "  200"
like "$(cat "$DT/mh")" "text/plain; version=0.0.4" "  exposition format 0.0.4"
bad=$(grep -v -E '^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+|[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.e+Inf-]+)$' "$DT/metrics")
is "$bad" "" "  every line is a valid exposition line"
is "$(grep -c '^# TYPE' "$DT/metrics")" \
   "$(grep '^# TYPE' "$DT/metrics" | awk '{print $3}' | sort -u | wc -l)" \
   "  each metric family declared once"
m() { # m OUTCOME APP -> the counter's value
	awk -v k="pgpush_pushes_total{app_id=\"$2\",platform=\"fcm\",outcome=\"$1\"}" \
		'$1 == k {print $2}' "$DT/metrics"
}
for o in sent failed invalid_token; do
	is "$(m $o "$APP")" \
	   "$(q $DB "SELECT count(*) FROM push.deliveries WHERE app_id = $APP
	             AND outcome = '$o' AND dispatcher = '$ID'")" \
	   "  pgpush_pushes_total{outcome=$o} equals the deliveries"
done
is "$(m dropped_banned "$BANNED")" 4 "  dropped_banned for the banned app: 4"
is "$(awk '$1 == "pgpush_acked_rows_total" {print $2}' "$DT/metrics")" \
   "$(q $DB "SELECT count(*) FROM push.deliveries WHERE dispatcher = '$ID'")" \
   "  pgpush_acked_rows_total equals the rows this dispatcher wrote"
is "$(awk '$1 == "pgpush_latency_ms_count" {print $2}' "$DT/metrics")" \
   "$(q $DB "SELECT count(*) FROM push.deliveries WHERE dispatcher = '$ID'
             AND latency_ms IS NOT NULL")" \
   "  the latency histogram counts every latency"
hreq=$(awk '$1 == "pgpush_http_requests_total" {print $2}' "$DT/metrics")
ok "$([ "${hreq:-0}" -ge "$(q $DB "SELECT count(*) FROM push.deliveries
      WHERE dispatcher = '$ID' AND provider_status IS NOT NULL")" ]; echo $?)" \
   "  pgpush_http_requests_total ($hreq) counts every answered push"
ok "$([ "$(awk '$1 == "pgpush_http_connects_total" {print $2}' "$DT/metrics")" -ge 1 ]; echo $?)" \
   "  pgpush_http_connects_total counts the connections made"
sqlt=$(awk '$1 ~ /^pgpush_(claim|ack)_seconds_total$/ { printf "%s ", $2 }
            $1 == "pgpush_slow_statements_total" { print $2 }' "$DT/metrics")
diag "claim s, ack s, slow statements: $sqlt"
ok "$(echo "$sqlt" | awk '{ exit !($1 > 0 && $1 < 60 && $2 > 0 && $2 < 60 &&
                                  $3 == int($3)) }'; echo $?)" \
   "  pgpush_claim_seconds_total and pgpush_ack_seconds_total add up the statements' time"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/")" 404 \
   "GET / is 404"
is "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$MPORT/metrics")" \
   405 "POST /metrics is 405"

# The debug push's trace.
is "$(q $DB "SELECT string_agg(step, ',' ORDER BY at, id)
             FROM push.debug_events WHERE push_id = $DEBUG_PUSH")" \
   "claimed,pool,request,http_response,response,classified,retry_decision,acked" \
   "the debug push's trace has every step, in order"
is "$(q $DB "SELECT (detail->>'method') || ' ' || (detail->'headers' ? 'content-type')
                    || ' ' || ((detail->>'body_bytes')::int > 0)
             FROM push.debug_events
             WHERE push_id = $DEBUG_PUSH AND step = 'request'")" "POST true true" \
   "  request: method, headers (the Authorization one left out), body size"
is "$(q $DB "SELECT (detail->>'status') || ' ' || (detail->>'body' LIKE '%messages/%')
             FROM push.debug_events
             WHERE push_id = $DEBUG_PUSH AND step = 'http_response'")" "200 true" \
   "  http_response: status and an excerpt of the provider's body"
is "$(q $DB "SELECT detail->>'by' FROM push.debug_events
             WHERE push_id = $DEBUG_PUSH AND step = 'claimed'")" "$ID" \
   "  claimed by this dispatcher"
is "$(q $DB "SELECT (detail->>'status') || ' ' || (detail ? 'message_id')
             FROM push.debug_events
             WHERE push_id = $DEBUG_PUSH AND step = 'response'")" "200 true" \
   "  response: status 200 and the provider's message id"
is "$(q $DB "SELECT detail->>'outcome' FROM push.debug_events
             WHERE push_id = $DEBUG_PUSH AND step = 'classified'")" "sent" \
   "  classified: sent"
is "$(q $DB "SELECT count(*) FROM push.debug_events
             WHERE push_id <> $DEBUG_PUSH")" 0 \
   "no other push wrote a debug event"
is "$(q $DB "SELECT count(DISTINCT dispatcher) || ' ' ||
                    bool_and(dispatcher = '$ID')
             FROM push.debug_events")" "1 true" \
   "  every event names the dispatcher"
# No secret in any trace: the service account's private key (any 24-byte
# piece of it), its id, the OAuth access tokens the fake issued.
key_body=$(perl -MJSON::PP -0777 -ne 'my $k = decode_json($_)->{private_key};
	$k =~ s/-----[A-Z ]+-----//g; $k =~ s/\s//g; print $k' "$CERTS/fcm-sa.json")
key_id=$(perl -MJSON::PP -0777 -ne 'print decode_json($_)->{private_key_id} // ""' "$CERTS/fcm-sa.json")
q $DB "SELECT coalesce(string_agg(step || ' ' || coalesce(detail::text, ''), E'\n'), '')
       FROM push.debug_events" >"$DT/trace.txt"
leaks=0
for off in $(seq 0 24 $(( ${#key_body} - 24 ))); do
	grep -qF "${key_body:$off:24}" "$DT/trace.txt" && leaks=$((leaks + 1))
done
ok "$([ ${#key_body} -gt 100 ] && [ $leaks -eq 0 ] && echo 0 || echo 1)" \
   "no piece of the private key in push.debug_events (${#key_body} chars checked)"
ok "$(! grep -qiE 'BEGIN PRIVATE KEY|private_key|bearer|authorization|ya29\.' "$DT/trace.txt" &&
      { [ -z "$key_id" ] || ! grep -qF "$key_id" "$DT/trace.txt"; } && echo 0 || echo 1)" \
   "no key id, Authorization header or access token in push.debug_events"

daemon_stop
is "$(q $DB "SELECT status || ' ' || live FROM push.dispatcher_health
             WHERE id = '$ID'")" "stopped false" \
   "after SIGTERM push.dispatcher_health shows it stopped"

# Outcomes decided at enqueue: a second campaign to a user without a device
# and to a device the provider already killed (UNREGISTERED above).
CAMP2=$(q $DB "INSERT INTO push.campaigns (app_id, name, payload_template,
               state) VALUES ($APP, 'stats-camp2', '{\"title\": \"hi\"}',
               'running') RETURNING id")
q $DB "
  INSERT INTO push.campaign_targets (campaign_id, user_id, enqueued_at)
  VALUES ($CAMP2, 'cu-none', now()), ($CAMP2, 'cu-dead', now());
  INSERT INTO push.pushes (app_id, user_id, payload, campaign_id)
  VALUES ($APP, 'cu-none', '{\"title\": \"camp2\"}', $CAMP2);
  INSERT INTO push.pushes (app_id, device_id, payload, campaign_id)
  SELECT $APP, id, '{\"title\": \"camp2\"}', $CAMP2 FROM push.devices
  WHERE token = 'stats-unreg-token-0001';" >/dev/null
is "$(q $DB "SELECT count(*) FROM push.queue")" 0 \
   "insert-time outcomes: nothing queued"
is "$(q $DB "SELECT targets || ' ' || queued || ' ' || invalidated || ' ' ||
                    no_device || ' ' || sent
             FROM push.campaign_funnel WHERE campaign_id = $CAMP2")" \
   "2 2 1 1 0" "  campaign_funnel counts them at once: 1 invalidated, 1 no_device"
is "$(q $DB "SELECT sum(invalid_token) || ' ' || sum(no_device)
             FROM push.app_stats_daily WHERE app_id = $APP")" "4 1" \
   "  app_stats_daily too: 3 + 1 invalid tokens, 1 no_device"
is "$(q $DB "SELECT string_agg(action || ': ' || object, ',')
             FROM push.run_maintenance() WHERE action = 'folded'")" \
   "folded: 2 insert-time outcomes into push.stats_minute" \
   "  push.run_maintenance() folds them into push.stats_minute"
is "$(q $DB "SELECT string_agg(outcome || '=' || n, ' ' ORDER BY outcome)
             FROM (SELECT outcome, sum(count) n FROM push.stats_minute
                   GROUP BY 1) x")" \
   "$(q $DB "SELECT string_agg(outcome || '=' || n, ' ' ORDER BY outcome)
             FROM (SELECT outcome, count(*) n FROM push.deliveries
                   GROUP BY 1) x")" \
   "  push.stats_minute equals push.deliveries, outcome by outcome"
is "$(q $DB "SELECT targets - sent - failed - invalidated - expired - dropped
                    - no_device FROM push.campaign_funnel
             WHERE campaign_id IN ($CAMP, $CAMP2) ORDER BY campaign_id")" \
   "$(printf '0\n0')" "  both campaigns' targets add up to their outcomes"

# --stats-interval-ms 0: statistics off - pushes go out, no stats written,
# the heartbeat and the debug events still are.
stats_before=$(q $DB "SELECT sum(count) FROM push.stats_minute")
daemon_start $DB --stats-interval-ms 0
q $DB "INSERT INTO push.pushes (app_id, device_id, payload, debug)
       SELECT $APP, id, '{\"title\": \"off\"}', token = 'stats-ok-token-0029'
       FROM push.devices WHERE token LIKE 'stats-ok-token-%'" >/dev/null
wait_for $DB "SELECT count(*) = 68 FROM push.deliveries
              WHERE outcome = 'sent'" 30
ok $? "stats off: 30 more pushes sent"
wait_for $DB "SELECT count(*) > 0 FROM push.debug_events d
              JOIN push.pushes p ON p.id = d.push_id
              WHERE p.payload->>'title' = 'off' AND d.step = 'acked'" 10
ok $? "  the debug push's trace is still written"
sleep 0.5
is "$(q $DB "SELECT sum(count) FROM push.stats_minute")" "$stats_before" \
   "  and push.stats_minute got nothing"
daemon_stop
fake_stop
done_testing
