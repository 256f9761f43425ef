#!/usr/bin/env bash
# dispatch_fcm_errors.t - every row of the FCM v1 response table
# (../shared/reference/PROTOCOLS.md 2.7), scripted per token on the fake,
# leads to the right outcome in the database:
#   404 UNREGISTERED, 400 INVALID_ARGUMENT on message.token, 403
#   SENDER_ID_MISMATCH -> invalid_token, device invalidated (reason
#   fcm:<code>), its other queued pushes never sent (finished invalid_token
#   when claimed later);
#   400 on another field -> failed with the reason;
#   429 / 503 with Retry-After -> a retry row, then sent no earlier;
#   500 -> retry with backoff, then sent; failing 3 times -> sent on the
#   4th attempt;
#   401 UNAUTHENTICATED once -> a new OAuth token, sent, one attempt;
#   401 THIRD_PARTY_AUTH_ERROR, 403 PERMISSION_DENIED -> failed;
#   a malformed 200 body and an HTML 502 never crash the daemon.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"

DB=dispatch_fcm_errors
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start

APP=$(fcm_app $DB errors)
names=(ok unreg badtok sidmm bad400 quota unavail internal failn reauth
       reauth2 tpae apnsauth permdenied unspec mal200 html502 rst)
for n in "${names[@]}"; do
	q $DB "INSERT INTO push.devices (app_id, platform, token)
	       VALUES ($APP, 'fcm', 'err-$n-token-0001')" >/dev/null
done
# An app that gives up after 2 attempts.
APP2=$(fcm_app $DB errors-max ", max_attempts" ", 2")
q $DB "INSERT INTO push.devices (app_id, platform, token)
       VALUES ($APP2, 'fcm', 'err-maxatt-token-0001')" >/dev/null
tok() { printf 'err-%s-token-0001' "$1"; }
dev() { q $DB "SELECT id FROM push.devices WHERE token = '$(tok "$1")'"; }

rule() { # rule NAME JSON-FIELDS
	local r
	r=$(ctl POST /rules "{\"provider\":\"fcm\",\"token\":\"$(tok "$1")\",$2}")
	case $r in *error*) echo "Bail out! rule $1: $r"; exit 1 ;; esac
}
rule unreg '"status":404,"reason":"UNREGISTERED"'
rule badtok '"reason":"INVALID_ARGUMENT"'
rule sidmm '"reason":"SENDER_ID_MISMATCH"'
bad400_body='{"error":{"code":400,"message":"Invalid value at '"'"'message.android.ttl'"'"'","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"},{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.android.ttl","description":"Invalid duration"}]}]}}'
rule bad400 "\"status\":400,\"reason\":\"INVALID_ARGUMENT\",\"body\":$(printf '%s' "$bad400_body" | perl -MJSON::PP -0777 -ne 'print JSON::PP->new->allow_nonref->encode($_)')"
rule quota '"reason":"QUOTA_EXCEEDED","retry_after":2,"times":1'
rule unavail '"reason":"UNAVAILABLE","retry_after":1,"times":1'
rule internal '"reason":"INTERNAL","times":1'
rule failn '"reason":"UNAVAILABLE","times":3'
rule reauth '"reason":"UNAUTHENTICATED","times":1'
rule reauth2 '"reason":"UNAUTHENTICATED"'
rule tpae '"reason":"THIRD_PARTY_AUTH_ERROR"'
rule apnsauth '"reason":"APNS_AUTH_ERROR"'
rule unspec '"reason":"UNSPECIFIED_ERROR","times":1'
rule rst '"action":"reset_stream","times":1'
rule maxatt '"reason":"INTERNAL"'
rule permdenied '"reason":"PERMISSION_DENIED"'
rule mal200 '"status":200,"body":"<<this is not JSON"'
rule html502 '"status":502,"times":1'

# One push per device; the three dead-token devices get a second push due
# 3 s later, so it is claimed after the first one's answer is recorded.
q $DB "INSERT INTO push.pushes (app_id, device_id, payload)
       SELECT app_id, id, '{\"title\":\"t\",\"body\":\"b\",\"data\":{\"k\":\"v\"}}'
       FROM push.devices WHERE app_id IN ($APP, $APP2);
       INSERT INTO push.pushes (app_id, device_id, payload, send_after)
       SELECT $APP, id, '{\"title\":\"second\"}', now() + interval '3 s'
       FROM push.devices
       WHERE token IN ('$(tok unreg)', '$(tok badtok)', '$(tok sidmm)')" \
	>/dev/null

daemon_start $DB
wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)" 40
ok $? "every push is finished (the queue drains)"
ok "$(daemon_alive; echo $?)" "the daemon is still running"

# final NAME: outcome|status|reason|attempt of the device's first push's
# final (non-retry) delivery.
final() {
	q $DB "SELECT x.outcome || '|' || coalesce(x.provider_status::text, '')
	         || '|' || coalesce(x.provider_reason, '') || '|' || x.attempt
	       FROM push.deliveries x
	       WHERE x.device_id = $(dev "$1") AND x.outcome <> 'retry'
	       ORDER BY x.push_id LIMIT 1"
}
retries() {
	q $DB "SELECT count(*) FROM push.deliveries
	       WHERE device_id = $(dev "$1") AND outcome = 'retry'"
}
fake_requests() {
	fcm_log_tokens | awk -v t="$(tok "$1")" '$1 == t' | wc -l
}

like "$(final ok)" '^sent\|200\|\|1$' "no rule: sent on the first attempt"
is "$(q $DB "SELECT provider_message_id LIKE 'projects/$FCM_PROJECT/messages/%'
             FROM push.deliveries WHERE device_id = $(dev ok)")" t \
	"  with the provider's message name"

for n in unreg:404:UNREGISTERED badtok:400:INVALID_ARGUMENT \
	 sidmm:403:SENDER_ID_MISMATCH; do
	IFS=: read -r name st code <<<"$n"
	is "$(final "$name")" "invalid_token|$st|$code|1" \
		"$st $code: invalid_token"
	like "$(q $DB "SELECT invalidated_at IS NOT NULL, invalid_reason
	               FROM push.devices WHERE id = $(dev "$name")")" \
		"^t\|fcm:$code" "  device invalidated, reason fcm:$code"
	is "$(q $DB "SELECT string_agg(x.outcome || '|' ||
	               coalesce(x.provider_status::text, '-'), ',')
	             FROM push.deliveries x JOIN push.pushes p ON p.id = x.push_id
	             WHERE x.device_id = $(dev "$name")
	               AND p.payload ->> 'title' = 'second'")" "invalid_token|-" \
		"  its other queued push finished invalid_token, not sent"
	is "$(fake_requests "$name")" 1 "  the fake saw one request for it"
done

is "$(final bad400)" "failed|400|INVALID_ARGUMENT|1" \
	"400 INVALID_ARGUMENT on another field: failed with the reason"
is "$(q $DB "SELECT invalidated_at IS NULL FROM push.devices
             WHERE id = $(dev bad400)")" t "  device not invalidated"

# Retry-After: the retry row's retry_at is Retry-After seconds after the
# answer, and the next attempt is not made before it.
for n in quota:429:2 unavail:503:1; do
	IFS=: read -r name st ra <<<"$n"
	is "$(q $DB "SELECT string_agg(outcome || '|' || provider_status || '|'
	               || attempt, ',' ORDER BY finished_at)
	             FROM push.deliveries WHERE device_id = $(dev "$name")")" \
		"retry|$st|1,sent|200|2" "$st with Retry-After $ra: retry, then sent"
	is "$(q $DB "SELECT extract(epoch FROM r.retry_at - r.finished_at)
	               BETWEEN $ra - 0.1 AND $ra + 2.5
	             AND s.sent_at >= r.retry_at - interval '50 ms'
	             FROM push.deliveries r, push.deliveries s
	             WHERE r.device_id = $(dev "$name") AND r.outcome = 'retry'
	               AND s.device_id = r.device_id AND s.outcome = 'sent'")" t \
		"  retry_at honours Retry-After ($ra s) and the resend waited for it"
done

is "$(q $DB "SELECT string_agg(outcome || '|' || provider_status || '|'
               || attempt, ',' ORDER BY finished_at)
             FROM push.deliveries WHERE device_id = $(dev internal)")" \
	"retry|500|1,sent|200|2" "500 INTERNAL: retry with backoff, then sent"
is "$(q $DB "SELECT retry_at > finished_at AND retry_at < finished_at + interval '3 s'
             FROM push.deliveries WHERE device_id = $(dev internal)
               AND outcome = 'retry'")" t "  retry_at within the first backoff step"

is "$(q $DB "SELECT string_agg(outcome || '|' || provider_status || '|'
               || attempt, ',' ORDER BY finished_at)
             FROM push.deliveries WHERE device_id = $(dev failn)")" \
	"retry|503|1,retry|503|2,retry|503|3,sent|200|4" \
	"failing 3 times, then succeeding: sent after 3 retries (attempt 4)"
is "$(fake_requests failn)" 4 "  the fake saw 4 requests"

is "$(q $DB "SELECT string_agg(outcome || '|' || provider_status || '|'
               || attempt, ',')
             FROM push.deliveries WHERE device_id = $(dev reauth)")" \
	"sent|200|1" "401 UNAUTHENTICATED once: sent, counted as one attempt"
is "$(fcm_log_tokens | awk -v t="$(tok reauth)" '$1 == t {print $2}' |
      paste -sd,)" "401,200" "  the fake saw the 401, then the resend"
tokreq=$(fcm_token_requests | grep -c '^200$')
ok "$([ "$tokreq" -ge 2 ]; echo $?)" \
	"  a second OAuth token was fetched ($tokreq token requests)"

is "$(q $DB "SELECT string_agg(outcome || '|' || provider_status || '|'
               || attempt, ',')
             FROM push.deliveries WHERE device_id = $(dev reauth2)")" \
	"failed|401|1" "401 UNAUTHENTICATED again after the refresh: failed"
is "$(fcm_log_tokens | awk -v t="$(tok reauth2)" '$1 == t {print $2}' |
      paste -sd,)" "401,401" "  the token was refreshed and retried only once"

is "$(final tpae)" "failed|401|THIRD_PARTY_AUTH_ERROR|1" \
	"401 THIRD_PARTY_AUTH_ERROR: failed"
is "$(final apnsauth)" "failed|401|APNS_AUTH_ERROR|1" \
	"401 APNS_AUTH_ERROR: failed"
is "$(final permdenied)" "failed|403|PERMISSION_DENIED|1" \
	"403 PERMISSION_DENIED: failed"
is "$(fake_requests tpae),$(fake_requests permdenied)" "1,1" \
	"  neither is resent"
for n in tpae apnsauth permdenied bad400 reauth2; do
	is "$(q $DB "SELECT invalidated_at IS NULL FROM push.devices
	             WHERE id = $(dev $n)")" t "  $n: device stays valid"
done

is "$(q $DB "SELECT string_agg(outcome || '|' || provider_status || '|'
               || attempt, ',' ORDER BY finished_at)
             FROM push.deliveries WHERE device_id = $(dev unspec)")" \
	"retry|500|1,sent|200|2" "500 UNSPECIFIED_ERROR: retry, then sent"
is "$(q $DB "SELECT string_agg(outcome || '|' || provider_status || '|'
               || attempt, ',' ORDER BY finished_at)
             FROM push.deliveries WHERE device_id = $(dev maxatt)")" \
	"retry|500|1,failed|500|2" \
	"500 every time, app max_attempts 2: retry, then failed on attempt 2"
is "$(q $DB "SELECT string_agg(outcome || '|' ||
               coalesce(provider_status::text, '-') || '|' || attempt, ','
               ORDER BY finished_at)
             FROM push.deliveries WHERE device_id = $(dev rst)")" \
	"retry|-|1,sent|200|2" "a stream reset (no answer): retry, then sent"

like "$(final mal200)" '^(sent|failed)\|200\|' \
	"a malformed 200 body: finished, no crash"
is "$(q $DB "SELECT string_agg(outcome || '|' || provider_status, ','
               ORDER BY finished_at)
             FROM push.deliveries WHERE device_id = $(dev html502)")" \
	"retry|502,sent|200" "an HTML 502: retry, then sent"

is "$(q $DB "SELECT count(*) FROM push.deliveries d WHERE outcome <> 'retry'
             GROUP BY push_id HAVING count(*) > 1")" "" \
	"no push has two final deliveries"
wait_for $DB "SELECT (SELECT coalesce(sum(count), 0) FROM push.stats_minute)
              = (SELECT count(*) FROM push.deliveries
                 WHERE outcome <> 'retry' OR retry_at IS NOT NULL)" 10
is "$(q $DB "SELECT string_agg(outcome || ':' || n, ' ' ORDER BY outcome)
             FROM (SELECT outcome, sum(count) n FROM push.stats_minute
                   GROUP BY 1) s")" \
	"$(q $DB "SELECT string_agg(outcome || ':' || n, ' ' ORDER BY outcome)
	          FROM (SELECT outcome, count(*) n FROM push.deliveries
	                GROUP BY 1) s")" \
	"push.stats_minute counts match the deliveries by outcome"

daemon_stop 10
fake_stop
done_testing
