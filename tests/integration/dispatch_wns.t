#!/usr/bin/env bash
# dispatch_wns.t - WNS end to end through the fake (PROTOCOLS.md 3):
#   a push with text, badge and wns.tile makes exactly three requests
#   (toast, badge, tile) with the right X-WNS-Type, Content-Type and
#   headers, and is sent only when all three are accepted; a data-only
#   push is one raw request; one part's failure shows in the delivery row;
#   a retry resends only the parts not accepted; every row of the response
#   table (3.4) -> the right outcome; 401 -> a new token and one resend;
#   a channel host outside channel_hosts is never contacted; both OAuth
#   flows (store, entra).
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"
. "$(dirname "$0")/../harness/msft.sh"

DB=dispatch_wns
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start "$WNS_FAKE_CLIENT"

APP=$(wns_app $DB wnsapp)
APP2=$(wns_app $DB wnsentra entra)
names=(multi raw onefail partial dropped throttled bad400 reauth reauth2
       forbidden gone404 badmethod t406 gone410 blocked big413 int500
       unavail503 gw502)
for n in "${names[@]}"; do
	q $DB "INSERT INTO push.devices (app_id, platform, token)
	       VALUES ($APP, 'wns', '$(wns_channel "$n")')" >/dev/null
done
q $DB "INSERT INTO push.devices (app_id, platform, token) VALUES
       ($APP, 'wns', 'https://evil.example.com/?token=offlist'),
       ($APP2, 'wns', '$(wns_channel entra)')" >/dev/null
dev() { q $DB "SELECT id FROM push.devices WHERE token LIKE '%token=$1'"; }

rule() { # rule TOKEN JSON-FIELDS
	local r
	r=$(ctl POST /rules "{\"provider\":\"wns\",\"token\":\"$1\",$2}")
	case $r in *error*) echo "Bail out! rule $1: $r"; exit 1 ;; esac
}
rule partial '"status":503,"retry_after":1,"times":1'
rule dropped '"status":200,"reason":"dropped"'
rule throttled '"status":200,"reason":"channelthrottled","retry_after":1,"times":1'
rule bad400 '"status":400'
rule reauth '"status":401,"times":1'
rule reauth2 '"status":401'
rule forbidden '"status":403'
rule gone404 '"status":404'
rule badmethod '"status":405'
rule t406 '"status":406,"retry_after":1,"times":1'
rule gone410 '"status":410'
rule blocked '"status":410,"reason":"Domain Blocked"'
rule big413 '"status":413'
rule int500 '"status":500,"times":1'
rule unavail503 '"status":503,"retry_after":1,"times":1'
rule gw502 '"status":502,"times":1'

push() { # push TOKEN PAYLOAD [EXTRA-COLS EXTRA-VALS]
	q $DB "INSERT INTO push.pushes (app_id, device_id, payload ${3:-})
	       SELECT app_id, id, '$2' ${4:-} FROM push.devices
	       WHERE token LIKE '%token=$1'" >/dev/null
}
push multi '{"title":"Tom & Jerry <3","body":"Grüße \"du\"","badge":3,"data":{"k":"v"},"wns":{"tile":true,"tag":"news1"}}' \
	", ttl" ", 600"
push raw '{"data":{"only":"data"}}'
push onefail '{"title":"t","wns":{"tile":"<notatile/>"}}'
push partial '{"title":"t","badge":1}'
for n in dropped throttled bad400 reauth reauth2 forbidden gone404 \
	 badmethod t406 gone410 blocked big413 int500 unavail503 gw502 entra \
	 offlist; do
	push $n '{"title":"t","body":"b"}'
done

daemon_start $DB
wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)" 40
ok $? "every push is finished (the queue drains)"

final() { # outcome|status|reason|attempt of the final delivery
	q $DB "SELECT outcome || '|' || coalesce(provider_status::text, '')
	         || '|' || coalesce(provider_reason, '') || '|' || attempt
	       FROM push.deliveries WHERE device_id = $(dev "$1")
	         AND outcome <> 'retry' ORDER BY finished_at DESC LIMIT 1"
}
history() {
	q $DB "SELECT string_agg(outcome || '|' ||
	         coalesce(provider_status::text, '-'), ',' ORDER BY finished_at)
	       FROM push.deliveries WHERE device_id = $(dev "$1")"
}
reqs() { wns_log | awk -v t="$1" '$1 == t' | wc -l; }

# Three parts, each with its own type, all accepted.
is "$(final multi)" \
	"sent|200|toast=200 received; badge=200 received; tile=200 received|1" \
	"toast + badge + tile: sent, each part's outcome in the reason"
is "$(wns_log | awk '$1 == "multi" {print $2, $3}' | sort | paste -sd,)" \
	"wns/badge 200,wns/tile 200,wns/toast 200" \
	"  exactly three requests: toast, badge, tile"
like "$(q $DB "SELECT provider_message_id FROM push.deliveries
               WHERE device_id = $(dev multi)")" \
	'^toast=[0-9a-f]{16}; badge=[0-9a-f]{16}; tile=[0-9a-f]{16}$' \
	"  the X-WNS-Msg-ID of each part is stored"
is "$(log_header wns multi content-type | sort -u | paste -sd,)" "text/xml" \
	"  Content-Type text/xml"
is "$(log_header wns multi x-wns-tag | sort | paste -sd,)" "-,-,news1" \
	"  X-WNS-Tag on the tile only"
ttls=$(log_header wns multi x-wns-ttl | sort -u)
ok "$([ "$ttls" -gt 500 ] && [ "$ttls" -le 600 ]; echo $?)" \
	"  X-WNS-TTL from the push's ttl ($ttls)"
is "$(log_header wns multi expect | sort -u)" "-" "  no Expect header"
like "$(log_header wns multi authorization | sort -u)" '^Bearer EgAc' \
	"  the OAuth bearer token"
body=$(perl -MJSON::PP -ne 'binmode STDOUT, ":utf8"; my $r = decode_json($_);
	print $r->{body} if $r->{token} eq "multi" &&
	$r->{headers}{"x-wns-type"} eq "wns/toast"' "$DT/requests.log")
is "$body" '<toast launch="{&quot;k&quot;:&quot;v&quot;}"><visual><binding template="ToastGeneric"><text>Tom &amp; Jerry &lt;3</text><text>Grüße &quot;du&quot;</text></binding></visual></toast>' \
	"  the toast XML, escaped, UTF-8 as is, data as launch"

is "$(wns_log | awk '$1 == "raw" {print $2, $3}')" "wns/raw 200" \
	"data-only: one raw request"
is "$(log_header wns raw content-type)" "application/octet-stream" \
	"  Content-Type application/octet-stream"
is "$(final raw)" "sent|200|raw=200 received|1" "  sent"

like "$(final onefail)" '^failed\|400\|toast=200 received; tile=400 bad request\|1$' \
	"one part refused: failed, the failing part visible in the reason"

is "$(history partial)" "retry|503,sent|200" \
	"one of two parts 503: retry, then sent"
is "$(reqs partial)" 3 "  the retry resent only the failed part (3 requests)"
like "$(final partial)" 'accepted earlier' \
	"  the final row says which part was accepted earlier"

is "$(final dropped)" "sent|200|toast=200 dropped|1" \
	"200 X-WNS-Status dropped: accepted, recorded, not retried"
is "$(reqs dropped)" 1 "  one request"
is "$(history throttled)" "retry|200,sent|200" \
	"200 channelthrottled: retry (throttled), then sent"
is "$(final bad400)" "failed|400|toast=400 bad request|1" "400: failed"
is "$(final reauth)" "sent|200|toast=200 received|1" \
	"401 once: new token, resent, sent in one attempt"
is "$(wns_log | awk '$1 == "reauth" {print $3}' | paste -sd,)" "401,200" \
	"  the fake saw the 401, then the resend"
is "$(final reauth2)" "failed|401|toast=401 unauthorized|1" \
	"401 again after a new token: failed"
is "$(reqs reauth2)" 2 "  resent at most once"
ntok=$(wns_token_requests | grep -c 'accesstoken.srf 200')
ok "$([ "$ntok" -ge 2 ]; echo $?)" "  new tokens were fetched ($ntok)"
is "$(final forbidden)" "failed|403|toast=403 forbidden (credential not for this channel)|1" \
	"403: failed"
for n in gone404:404:channel\ not\ found gone410:410:channel\ expired; do
	IFS=: read -r name st why <<<"$n"
	is "$(final "$name")" "invalid_token|$st|toast=$st $why|1" \
		"$st: invalid_token"
	is "$(q $DB "SELECT invalidated_at IS NOT NULL FROM push.devices
	             WHERE id = $(dev "$name")")" t "  channel invalidated"
done
is "$(final badmethod)" "failed|405|toast=405 method not allowed|1" "405: failed"
is "$(history t406)" "retry|406,sent|200" "406 + Retry-After: retry, then sent"
is "$(q $DB "SELECT extract(epoch FROM retry_at - finished_at) < 3
             FROM push.deliveries WHERE device_id = $(dev t406)
               AND outcome = 'retry'")" t "  retry_at honours Retry-After"
is "$(final blocked)" "failed|410|toast=410 domain blocked|1" \
	"410 Domain Blocked: failed, channel kept"
is "$(q $DB "SELECT invalidated_at IS NULL FROM push.devices
             WHERE id = $(dev blocked)")" t "  the channel is not invalidated"
is "$(final big413)" "failed|413|toast=413 payload too large|1" "413: failed"
is "$(history int500)" "retry|500,sent|200" "500: retry with backoff, then sent"
is "$(history unavail503)" "retry|503,sent|200" "503 + Retry-After: retry, then sent"
is "$(history gw502)" "retry|502,sent|200" \
	"502 (not WNS's own answer, retry_ambiguous NULL = yes for WNS): retried"

like "$(final offlist)" '^failed\|\|channel host evil\.example\.com is not in the allowed channel hosts\|' \
	"a channel host outside channel_hosts: failed, saying why"
is "$(reqs offlist)" 0 "  the fake never saw it"

is "$(final entra)" "sent|200|toast=200 received|1" "entra flow: sent"
is "$(wns_token_requests | grep -c '^/contoso/oauth2/v2.0/token 200$')" 1 \
	"  one token from the Entra ID endpoint"

daemon_stop 10
fake_stop
done_testing
