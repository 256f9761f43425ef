#!/usr/bin/env bash
# dispatch_apns_reconnect.t - the RECONNECT rows of Apple's table
# (../shared/reference/PROTOCOLS.md 1.9): 503 Shutdown, 503
# ServiceUnavailable and 400 IdleTimeout answered once (the fake keeps the
# connection open, no GOAWAY) are retried on a new connection, with the
# HTTP bridge on the loop (--http-threads 0) and on worker threads (2):
#   - the retry arrives on another TCP connection than the first request
#     (the fake numbers its connections: `conn` in its request log), and
#     the push ends sent;
#   - a push still in flight on the old connection gets its answer there
#     (sent, one request, not resent);
#   - later pushes go out on the new connection, never on the old one;
#   - the retired connections are closed (one connection is left open).
# (A connection that replaced a retired one is kept for its first second:
# the rounds here are a second apart.)
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"
. "$(dirname "$0")/../harness/apns.sh"

DB=dispatch_apns_reconnect
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
apns_fake_start --apns-jwt-min-refresh 0   # a new daemon mints at once
APP=$(apns_app $DB apns-reconnect)

drained() { wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)" 30; }
push() { # push TAG
	q $DB "INSERT INTO push.pushes (app_id, platform, token, payload)
	       VALUES ($APP, 'apns', '$(apns_tok "$1")',
	               '{\"title\":\"t\",\"body\":\"b\"}')" >/dev/null
}
rule() { # rule TAG JSON-FIELDS
	local r
	r=$(ctl POST /rules "{\"provider\":\"apns\",\"token\":\"$(apns_tok "$1")\",$2}")
	case $r in *error*) echo "Bail out! rule $1: $r"; exit 1 ;; esac
}
# conns TAG: the connection of each request for that token, in order
conns() { apns_log | awk -v t="$(apns_tok "$1")" '$2 == t {print $1}' | paste -sd' '; }
# arrived TAG: when the first request for that token reached the fake (ms)
arrived() {
	T=$(apns_tok "$1") perl -MJSON::PP -ne '
		my $r = eval { decode_json($_) } or next;
		if (($r->{token} // "") eq $ENV{T}) { print $r->{time_ms}; exit }
	' "$DT/requests.log"
}
history() { # history TAG: outcome|status of each delivery row, in order
	q $DB "SELECT string_agg(outcome || '|' ||
	         coalesce(provider_status::text, '-'), ',' ORDER BY finished_at)
	       FROM push.deliveries x JOIN push.pushes p ON p.id = x.push_id
	       WHERE p.token = '$(apns_tok "$1")'"
}

for th in 0 2; do
	daemon_start $DB --http-threads $th
	push "warm$th"
	drained; ok $? "threads $th: a first push is sent"
	c0=$(conns "warm$th")

	# One push answers slowly on the first connection while another
	# gets 503 Shutdown there.
	rule "slow$th" '"delay_ms":1500'
	rule "shut$th" '"status":503,"reason":"Shutdown","times":1'
	push "slow$th"
	push "shut$th"
	drained; ok $? "threads $th: 503 Shutdown and the slow push finish"
	ok "$(( $(arrived "shut$th") < $(arrived "slow$th") + 1500 ? 0 : 1 ))" \
		"threads $th: the 503 came while the slow push was in flight"
	c=($(conns "shut$th"))
	is "${#c[@]}|${c[0]:-}|$(history "shut$th")" "2|$c0|retry|503,sent|200" \
		"threads $th: 503 Shutdown on connection $c0: retry, then sent"
	c1=${c[1]:-none}
	ok "$([ "$c1" != "$c0" ]; echo $?)" \
		"  the retry went out on a new connection ($c0 -> $c1)"
	is "$(conns "slow$th")|$(history "slow$th")" "$c0|sent|200" \
		"  the push in flight on the old connection: answered there, sent once"

	push "after$th"
	drained
	is "$(conns "after$th")" "$c1" \
		"  the next push goes out on the new connection ($c1)"

	prev=$c1
	for r in ServiceUnavailable:503 IdleTimeout:400; do
		n=${r%%:*} st=${r##*:}
		sleep 1   # a new connection is kept for its first second
		rule "$n$th" "\"status\":$st,\"reason\":\"$n\",\"times\":1"
		push "$n$th"
		drained; ok $? "threads $th: $st $n finishes"
		c=($(conns "$n$th"))
		is "${#c[@]}|${c[0]:-}|$(history "$n$th")" \
			"2|$prev|retry|$st,sent|200" \
			"threads $th: $st $n on connection $prev: retry, then sent"
		ok "$([ "${c[1]:-$prev}" != "$prev" ]; echo $?)" \
			"  the retry went out on a new connection ($prev -> ${c[1]:-none})"
		prev=${c[1]:-$prev}
	done
	sleep 0.5
	is "$(ss -Htn state established "( dport = :$APNS_PORT )" | wc -l | tr -d ' ')" 1 \
		"threads $th: the retired connections are closed, one is open"
	daemon_stop 10
done

is "$(apns_log | awk '$3 == 403 || $3 == 429' | wc -l | tr -d ' ')" 0 \
	"no provider token was refused on the new connections"
fake_stop
done_testing
