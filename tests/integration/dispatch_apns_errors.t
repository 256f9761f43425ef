#!/usr/bin/env bash
# dispatch_apns_errors.t - every row of the APNs response table
# (../shared/reference/PROTOCOLS.md 1.9) that is about the push (not the
# provider token: dispatch_apns_auth.t), scripted per device token on the
# fake, leads to the right outcome in the database:
#   200 -> sent, provider_message_id = the apns-id the daemon sent;
#   400 BadDeviceToken / DeviceTokenNotForTopic, 410 ExpiredToken ->
#   invalid_token, device invalidated (apns:<reason>), its other queued
#   push never sent;
#   410 Unregistered + timestamp: the device is invalidated only if it was
#   not re-registered after the timestamp (both ways); a stale one (the
#   device re-registered after it) is recorded as failed with a reason
#   that says so, not as invalid_token;
#   every other 400, 403 (certificate/config), 404, 405, 413 -> failed with
#   Apple's reason, never resent, device kept;
#   400 IdleTimeout, 429 TooManyRequests (no earlier than 5 s), 500, 503,
#   503 Shutdown + GOAWAY, a stream reset -> retry, then sent.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"
. "$(dirname "$0")/../harness/apns.sh"

DB=dispatch_apns_errors
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
apns_fake_start

APP=$(apns_app $DB apns-errors)
fail_rows=(BadCollapseId:400 BadExpirationDate:400 BadMessageId:400
	BadPriority:400 BadTopic:400 DuplicateHeaders:400 InvalidPushType:400
	MissingDeviceToken:400 MissingTopic:400 PayloadEmpty:400
	TopicDisallowed:400 BadCertificate:403 BadCertificateEnvironment:403
	Forbidden:403 UnrelatedKeyIdInToken:403 BadEnvironmentKeyIdInToken:403
	BadPath:404 MethodNotAllowed:405 PayloadTooLarge:413)
dead_rows=(BadDeviceToken:400 DeviceTokenNotForTopic:400 ExpiredToken:410)
retry_rows=(IdleTimeout:400 TooManyRequests:429 InternalServerError:500
	ServiceUnavailable:503)
names=(ok unreg_old unreg_new shutdown rst)
for r in "${fail_rows[@]}" "${dead_rows[@]}" "${retry_rows[@]}"; do
	names+=("${r%%:*}")
done
tok() { apns_tok "errors-$1"; }
for n in "${names[@]}"; do
	q $DB "INSERT INTO push.devices (app_id, platform, token, last_seen_at)
	       VALUES ($APP, 'apns', '$(tok "$n")',
	               now() - interval '2 hours')" >/dev/null
done
# Re-registered (last seen) after the 410's timestamp: keeps its token.
q $DB "UPDATE push.devices SET last_seen_at = now()
       WHERE token = '$(tok unreg_new)'" >/dev/null
dev() { q $DB "SELECT id FROM push.devices WHERE token = '$(tok "$1")'"; }

rule() { # rule NAME JSON-FIELDS
	local r
	r=$(ctl POST /rules "{\"provider\":\"apns\",\"token\":\"$(tok "$1")\",$2}")
	case $r in *error*) echo "Bail out! rule $1: $r"; exit 1 ;; esac
}
for r in "${fail_rows[@]}" "${dead_rows[@]}"; do
	rule "${r%%:*}" "\"status\":${r##*:},\"reason\":\"${r%%:*}\""
done
for r in "${retry_rows[@]}"; do
	rule "${r%%:*}" "\"status\":${r##*:},\"reason\":\"${r%%:*}\",\"times\":1"
done
hour_ago_ms=$(( $(now_ms) - 3600 * 1000 ))
rule unreg_old "\"status\":410,\"reason\":\"Unregistered\",\"timestamp\":$hour_ago_ms"
rule unreg_new "\"status\":410,\"reason\":\"Unregistered\",\"timestamp\":$hour_ago_ms"
rule shutdown '"status":503,"reason":"Shutdown","action":"respond_goaway","times":1'
rule rst '"action":"reset_stream","times":1'

# One push per device; the dead-token devices get a second push due 3 s
# later, claimed after the first one's answer is recorded.
q $DB "INSERT INTO push.pushes (app_id, device_id, payload)
       SELECT app_id, id, '{\"title\":\"t\",\"body\":\"b\"}'
       FROM push.devices WHERE app_id = $APP;
       INSERT INTO push.pushes (app_id, device_id, payload, send_after)
       SELECT $APP, id, '{\"title\":\"second\"}', now() + interval '3 s'
       FROM push.devices
       WHERE token IN ('$(tok BadDeviceToken)', '$(tok DeviceTokenNotForTopic)',
                       '$(tok ExpiredToken)', '$(tok unreg_old)')" >/dev/null

daemon_start $DB
wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)" 40
ok $? "every push is finished (the queue drains)"
ok "$(daemon_alive; echo $?)" "the daemon is still running"

final() {
	q $DB "SELECT x.outcome || '|' || coalesce(x.provider_status::text, '')
	         || '|' || coalesce(x.provider_reason, '') || '|' || x.attempt
	       FROM push.deliveries x JOIN push.pushes p ON p.id = x.push_id
	       WHERE x.device_id = $(dev "$1") AND x.outcome <> 'retry'
	         AND p.payload ->> 'title' = 't'"
}
history() {
	q $DB "SELECT string_agg(outcome || '|' ||
	         coalesce(provider_status::text, '-') || '|' || attempt, ','
	         ORDER BY finished_at)
	       FROM push.deliveries x JOIN push.pushes p ON p.id = x.push_id
	       WHERE x.device_id = $(dev "$1") AND p.payload ->> 'title' = 't'"
}
requests() { apns_log | awk -v t="$(tok "$1")" '$2 == t' | wc -l | tr -d ' '; }
valid() {
	q $DB "SELECT invalidated_at IS NULL FROM push.devices WHERE id = $(dev "$1")"
}

is "$(final ok)" "sent|200||1" "no rule: sent on the first attempt"
sent_id=$(perl -MJSON::PP -e 'my $t = shift; while (<STDIN>) {
	my $r = decode_json($_); print $r->{headers}{"apns-id"}, "\n"
	    if ($r->{token} // "") eq $t }' "$(tok ok)" <"$DT/requests.log")
is "$(q $DB "SELECT provider_message_id FROM push.deliveries
             WHERE device_id = $(dev ok)")" "$sent_id" \
	"  its provider message id is the apns-id the daemon sent ($sent_id)"
like "$sent_id" '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' \
	"  a lowercase version-4 UUID"

for r in "${fail_rows[@]}"; do
	n=${r%%:*} st=${r##*:}
	is "$(final "$n")|$(requests "$n")|$(valid "$n")" "failed|$st|$n|1|1|t" \
		"$st $n: failed with the reason, sent once, device kept"
done
for r in "${dead_rows[@]}"; do
	n=${r%%:*} st=${r##*:}
	is "$(final "$n")" "invalid_token|$st|$n|1" "$st $n: invalid_token"
	is "$(q $DB "SELECT invalidated_at IS NOT NULL, invalid_reason
	             FROM push.devices WHERE id = $(dev "$n")")" "t|apns:$n" \
		"  device invalidated, reason apns:$n"
	is "$(q $DB "SELECT string_agg(x.outcome || '|' ||
	               coalesce(x.provider_status::text, '-'), ',')
	             FROM push.deliveries x JOIN push.pushes p ON p.id = x.push_id
	             WHERE x.device_id = $(dev "$n")
	               AND p.payload ->> 'title' = 'second'")|$(requests "$n")" \
		"invalid_token|-|1" "  its other queued push is not sent"
done

is "$(final unreg_old)" "invalid_token|410|Unregistered|1" \
	"410 Unregistered: invalid_token"
is "$(q $DB "SELECT invalidated_at IS NOT NULL, invalid_reason
             FROM push.devices WHERE id = $(dev unreg_old)")" \
	"t|apns:Unregistered" \
	"  last seen before the 410 timestamp: device invalidated"
is "$(final unreg_new)" \
	"failed|410|Unregistered (stale: device re-registered after Apple's timestamp)|1" \
	"410 Unregistered for a re-registered device: failed (stale), not invalid_token"
is "$(valid unreg_new)" t \
	"  re-registered after the 410 timestamp: the device keeps its token"

for r in "${retry_rows[@]}"; do
	n=${r%%:*} st=${r##*:}
	is "$(history "$n")" "retry|$st|1,sent|200|2" "$st $n: retry, then sent"
done
is "$(q $DB "SELECT extract(epoch FROM s.sent_at - r.finished_at) >= 4.9
             FROM push.deliveries r, push.deliveries s
             WHERE r.device_id = $(dev TooManyRequests) AND r.outcome = 'retry'
               AND s.device_id = r.device_id AND s.outcome = 'sent'")" t \
	"  429 TooManyRequests: that device is retried no earlier than 5 s later"
is "$(history shutdown)" "retry|503|1,sent|200|2" \
	"503 Shutdown followed by GOAWAY: retry, then sent (new connection)"
# libcurl 7.88 itself resends a reset stream that got no byte on a reused
# connection; otherwise the daemon records a retry.
like "$(history rst)" '^(retry\|-\|1,sent\|200\|2|sent\|200\|1)$' \
	"a stream reset (no answer): resent, then sent"

is "$(q $DB "SELECT count(*) FROM (SELECT push_id FROM push.deliveries
             WHERE outcome <> 'retry' GROUP BY push_id HAVING count(*) > 1) d")" \
	0 "no push has two final deliveries"
is "$(apns_log | awk '$3 == 403 || $3 == 429 {print $4}' |
      grep -cE 'ProviderToken')" 0 "the provider token was never refused"

daemon_stop 10
# The statistics count what the deliveries say: a stale 410 is a failure
# there too, not a dead token.
for o in invalid_token failed; do
	is "$(q $DB "SELECT coalesce(sum(count), 0) FROM push.stats_all
	             WHERE outcome = '$o'")" \
		"$(q $DB "SELECT count(*) FROM push.deliveries
		           WHERE outcome = '$o'")" \
		"  the stats count as many $o outcomes as push.deliveries"
done
fake_stop
done_testing
