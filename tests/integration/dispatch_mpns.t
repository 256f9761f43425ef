#!/usr/bin/env bash
# dispatch_mpns.t - MPNS end to end through the fake (PROTOCOLS.md 4):
#   a push with text and a badge makes exactly two requests (toast and
#   tile, X-WindowsPhone-Target toast / token), a data-only push one raw
#   request; X-NotificationClass follows the priority; the X-MessageID of
#   each part is stored; every documented combination (4.3) -> the right
#   outcome; QueueFull backs off in minutes, 406 and 412 wait an hour and
#   a channel answered 412 is not contacted again within the hour;
#   ambiguous answers (a 200 HTML page, a 5xx other than 503) are
#   uncertain and not resent while the app's retry_ambiguous is NULL, and
#   retried once it is set to true (the running pool picks the change up);
#   the client certificate is presented when the credential has one; a
#   channel host outside channel_hosts is never contacted.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"
. "$(dirname "$0")/../harness/msft.sh"

DB=dispatch_mpns
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start

APP=$(mpns_app $DB mpnsapp)
CAPP=$(mpns_app $DB mpnscert cert)
names=(two high low raw suppressed queuefull bad400 unauth gone badmethod
       daily inactive unavail html gw500 ambig2)
for n in "${names[@]}"; do
	q $DB "INSERT INTO push.devices (app_id, platform, token)
	       VALUES ($APP, 'mpns', '$(mpns_channel "$n")')" >/dev/null
done
q $DB "INSERT INTO push.devices (app_id, platform, token) VALUES
       ($APP, 'mpns', 'https://evil.example.com/x/offlist'),
       ($CAPP, 'mpns', '$(mpns_channel certified)')" >/dev/null
dev() { q $DB "SELECT id FROM push.devices WHERE token LIKE '%/$1'"; }

rule() {
	local r
	r=$(ctl POST /rules "{\"provider\":\"mpns\",\"token\":\"$1\",$2}")
	case $r in *error*) echo "Bail out! rule $1: $r"; exit 1 ;; esac
}
rule suppressed '"status":200,"reason":"Suppressed"'
rule queuefull '"status":200,"reason":"QueueFull"'
rule bad400 '"status":400'
rule unauth '"status":401'
rule gone '"status":404'
rule badmethod '"status":405'
rule daily '"status":406'
rule inactive '"status":412'
rule unavail '"status":503'
rule html '"status":200,"headers":{"Content-Type":"text/html"},"body":"<html><body>Service error</body></html>"'
rule gw500 '"status":500'
rule ambig2 '"status":502'

push() { # push TOKEN PAYLOAD [PRIORITY]
	q $DB "INSERT INTO push.pushes (app_id, device_id, payload, priority)
	       SELECT app_id, id, '$2', '${3:-normal}' FROM push.devices
	       WHERE token LIKE '%/$1'" >/dev/null
}
push two '{"title":"Tom & Jerry","body":"<b>hi</b>","badge":7}'
push high '{"title":"urgent"}' high
push low '{"badge":1}' low
push raw '{"data":{"k":"v"}}'
for n in suppressed queuefull bad400 unauth gone badmethod daily inactive \
	 unavail html gw500 offlist certified; do
	push $n '{"title":"t","body":"b"}'
done

daemon_start $DB
final() {
	q $DB "SELECT outcome || '|' || coalesce(provider_status::text, '')
	         || '|' || coalesce(provider_reason, '') || '|' || attempt
	       FROM push.deliveries WHERE device_id = $(dev "$1")
	       ORDER BY finished_at DESC LIMIT 1"
}
reqs() { mpns_log | awk -v t="$1" '$1 == t' | wc -l; }
# Every push has a delivery row (the retries stay queued for minutes).
wait_for $DB "(SELECT count(DISTINCT push_id) FROM push.deliveries) =
              (SELECT count(*) FROM push.pushes)" 30
ok $? "every push has an outcome"

is "$(final two)" "sent|200|toast=200 Received/Connected/Active; tile=200 Received/Connected/Active|1" \
	"title + badge: sent, both parts in the reason"
is "$(mpns_log | awk '$1 == "two" {print $2, $3, $4}' | sort | paste -sd,)" \
	"toast 12 200,token 11 200" \
	"  exactly two requests: a toast and a tile, class 'within 450 s'"
mids=$(mpns_log | awk '$1 == "two" {print $6}' | sort | paste -sd,)
stored=$(q $DB "SELECT provider_message_id FROM push.deliveries
                WHERE device_id = $(dev two)")
like "$stored" '^toast=[0-9a-f-]{36}; tile=[0-9a-f-]{36}$' \
	"  the X-MessageID of each part is stored"
is "$(printf '%s' "$stored" | grep -oE '[0-9a-f-]{36}' | sort | paste -sd,)" \
	"$mids" "  and they are the ids the fake received"
body=$(perl -MJSON::PP -ne 'binmode STDOUT, ":utf8"; my $r = decode_json($_);
	print $r->{body} if $r->{token} eq "two" &&
	$r->{headers}{"x-windowsphone-target"} eq "toast"' "$DT/requests.log")
is "$body" '<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification"><wp:Toast><wp:Text1>Tom &amp; Jerry</wp:Text1><wp:Text2>&lt;b&gt;hi&lt;/b&gt;</wp:Text2></wp:Toast></wp:Notification>' \
	"  the toast XML, escaped"
is "$(mpns_log | awk '$1 == "high" {print $2, $3}')" "toast 2" \
	"high priority: immediate class (2)"
is "$(mpns_log | awk '$1 == "low" {print $2, $3}')" "token 21" \
	"low priority badge only: one tile, class 'within 900 s' (21)"
is "$(mpns_log | awk '$1 == "raw" {print $2, $3}')" "- 13" \
	"data-only: one raw request without X-WindowsPhone-Target"
is "$(mpns_log | awk '$1 == "two" || $1 == "raw" {print $5}' | sort -u)" \
	"unauthenticated" "  no client certificate for this app"

is "$(final suppressed)" "sent|200|toast=200 Suppressed/Connected/Active|1" \
	"200 Suppressed: accepted, not retried"
like "$(final queuefull)" '^retry\|200\|toast=200 QueueFull/' \
	"200 QueueFull: retry"
is "$(q $DB "SELECT extract(epoch FROM retry_at - finished_at) >= 59
             FROM push.deliveries WHERE device_id = $(dev queuefull)")" t \
	"  backing off in minutes"
is "$(final bad400)" "failed|400|toast=400 HTTP 400|1" "400: failed"
is "$(final unauth)" "failed|401|toast=401 HTTP 401|1" "401: failed"
is "$(final gone)" "invalid_token|404|toast=404 Dropped/Connected/Expired|1" \
	"404 Dropped/Expired: invalid_token"
is "$(q $DB "SELECT invalidated_at IS NOT NULL FROM push.devices
             WHERE id = $(dev gone)")" t "  channel invalidated"
is "$(final badmethod)" "failed|405|toast=405 HTTP 405|1" "405: failed"
for n in daily:406 inactive:412; do
	IFS=: read -r name st <<<"$n"
	like "$(final "$name")" "^retry\\|$st\\|toast=$st Dropped/" \
		"$st: retry"
	is "$(q $DB "SELECT extract(epoch FROM retry_at - finished_at)
	               BETWEEN 3590 AND 3610
	             FROM push.deliveries WHERE device_id = $(dev "$name")")" \
		t "  in an hour"
done
like "$(final unavail)" '^retry\|503\|' "503: retry"
is "$(q $DB "SELECT extract(epoch FROM retry_at - finished_at) >= 59
             FROM push.deliveries WHERE device_id = $(dev unavail)")" t \
	"  backing off in minutes"
is "$(final html)" "uncertain|200|toast=200 HTML page, no MPNS status|1" \
	"200 with an HTML page: uncertain"
is "$(final gw500)" "uncertain|500|toast=500 HTTP 500|1" \
	"500 (may have been delivered): uncertain"
is "$(reqs html),$(reqs gw500)" "1,1" "  neither is resent"
like "$(final offlist)" '^failed\|\|channel host evil\.example\.com is not in the allowed channel hosts\|' \
	"a channel host outside channel_hosts: failed, saying why"
is "$(reqs offlist)" 0 "  the fake never saw it"
is "$(final certified)" "sent|200|toast=200 Received/Connected/Active|1" \
	"an app with a client certificate: sent"
is "$(mpns_log | awk '$1 == "certified" {print $5}')" certificate \
	"  authenticated with the client certificate"

# 412: the channel is held for an hour; a new push waits without a request.
push inactive '{"title":"again"}'
wait_for $DB "(SELECT count(*) FROM push.deliveries
               WHERE device_id = $(dev inactive)) = 2" 10
is "$(final inactive)" "retry||channel held for an hour after a 406/412; not sent|1" \
	"a second push to the 412 channel: held, no request"
is "$(reqs inactive)" 1 "  the fake saw one request in all"

# retry_ambiguous NULL -> true reaches the running pool.
push ambig2 '{"title":"one"}'
wait_for $DB "EXISTS (SELECT 1 FROM push.deliveries
              WHERE device_id = $(dev ambig2))" 10
is "$(final ambig2)" "uncertain|502|toast=502 HTTP 502|1" \
	"502 with retry_ambiguous NULL: uncertain"
q $DB "UPDATE push.apps SET retry_ambiguous = true WHERE id = $APP" >/dev/null
sleep 1.5
push ambig2 '{"title":"two"}'
wait_for $DB "(SELECT count(*) FROM push.deliveries
               WHERE device_id = $(dev ambig2)) = 2" 10
like "$(final ambig2)" '^retry\|502\|' \
	"after UPDATE apps SET retry_ambiguous = true: the same answer is retried"

daemon_stop 10
fake_stop
done_testing
