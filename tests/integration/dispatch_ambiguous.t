#!/usr/bin/env bash
# dispatch_ambiguous.t - a request that went out and got no answer within
# --request-timeout-ms may have been shown on the phone: WNS and MPNS
# resend it only when push.apps.retry_ambiguous says so (NULL: yes for
# WNS, no for MPNS), else the push is finished as uncertain (README,
# WNS and MPNS).  The fake answers each channel's first request 3 s late,
# the daemon gives up after 1 s:
#   MPNS with retry_ambiguous NULL and WNS with false: uncertain, no retry
#   left in the queue, and the fake saw exactly one request, even once
#   every retry in the queue is due;
#   MPNS with true and WNS with NULL: a retry, resent, then sent.
# Both with --h2-direct 0 and 1 (WNS and MPNS stay on libcurl either way).
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"
. "$(dirname "$0")/../harness/msft.sh"

DB=dispatch_ambiguous
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start "$WNS_FAKE_CLIENT"

MNULL=$(mpns_app $DB mpns_null)
MTRUE=$(mpns_app $DB mpns_true "" ", retry_ambiguous" ", true")
WFALSE=$(wns_app $DB wns_false store ", retry_ambiguous" ", false")
WNULL=$(wns_app $DB wns_null)

dev() {
	q $DB "SELECT id FROM push.devices
	       WHERE token LIKE '%/$1' OR token LIKE '%?token=$1'"
}
final() {
	q $DB "SELECT outcome || '|' || coalesce(provider_status::text, '')
	         || '|' || attempt
	       FROM push.deliveries WHERE device_id = $(dev "$1")
	       ORDER BY finished_at DESC, attempt DESC LIMIT 1"
}
first() {
	q $DB "SELECT outcome || '|' || coalesce(provider_status::text, '')
	         || '|' || attempt
	       FROM push.deliveries WHERE device_id = $(dev "$1")
	       ORDER BY finished_at, attempt LIMIT 1"
}
reason() {
	q $DB "SELECT provider_reason FROM push.deliveries
	       WHERE device_id = $(dev "$1") ORDER BY finished_at LIMIT 1"
}
queued() {
	q $DB "SELECT count(*) FROM push.queue WHERE device_id = $(dev "$1")"
}
reqs() {
	{ mpns_log; wns_log; } | awk -v t="$1" '$1 == t' | wc -l
}

for h2 in 0 1; do
	mn=mnull$h2 mt=mtrue$h2 wf=wfalse$h2 wn=wnull$h2
	q $DB "INSERT INTO push.devices (app_id, platform, token) VALUES
	       ($MNULL, 'mpns', '$(mpns_channel $mn)'),
	       ($MTRUE, 'mpns', '$(mpns_channel $mt)'),
	       ($WFALSE, 'wns', '$(wns_channel $wf)'),
	       ($WNULL, 'wns', '$(wns_channel $wn)')" >/dev/null
	for t in $mn $mt; do
		r=$(ctl POST /rules "{\"provider\":\"mpns\",\"token\":\"$t\",
			\"delay_ms\":3000,\"times\":1}")
		case $r in *error*) echo "Bail out! rule: $r"; exit 1 ;; esac
	done
	for t in $wf $wn; do
		r=$(ctl POST /rules "{\"provider\":\"wns\",\"token\":\"$t\",
			\"delay_ms\":3000,\"times\":1}")
		case $r in *error*) echo "Bail out! rule: $r"; exit 1 ;; esac
	done
	for t in $mn $mt $wf $wn; do
		q $DB "INSERT INTO push.pushes (app_id, device_id, payload)
		       SELECT app_id, id, '{\"title\":\"once\"}'
		       FROM push.devices WHERE id = $(dev $t)" >/dev/null
	done

	daemon_start $DB --request-timeout-ms 1000 --h2-direct $h2
	wait_for $DB "(SELECT count(DISTINCT device_id) FROM push.deliveries
	               WHERE device_id IN ($(dev $mn), $(dev $mt),
	                                   $(dev $wf), $(dev $wn))) = 4" 30
	ok $? "h2-direct $h2: every push has a first outcome"

	is "$(final $mn)" "uncertain||1" \
		"h2-direct $h2: MPNS, NULL, no answer in time: uncertain"
	like "$(reason $mn)" '^toast=transport: ' \
		"  the reason names the transport error"
	is "$(queued $mn)" 0 "  finished: nothing left in the queue"
	is "$(final $wf)" "uncertain||1" \
		"h2-direct $h2: WNS, false, no answer in time: uncertain"
	is "$(queued $wf)" 0 "  finished: nothing left in the queue"
	is "$(first $mt)" "retry||1" \
		"h2-direct $h2: MPNS, retry_ambiguous true: a retry"
	is "$(first $wn)" "retry||1" \
		"h2-direct $h2: WNS, retry_ambiguous NULL (yes): a retry"

	# Every retry due now (MPNS waits minutes): whatever is resent goes.
	q $DB "UPDATE push.queue SET not_before = now()" >/dev/null
	wait_for $DB "(SELECT count(*) FROM push.deliveries
	               WHERE outcome = 'sent'
	                 AND device_id IN ($(dev $mt), $(dev $wn))) = 2" 30
	ok $? "h2-direct $h2: the retries are resent and sent"
	sleep 1.5
	is "$(reqs $mn),$(reqs $wf)" "1,1" \
		"h2-direct $h2: MPNS (NULL), WNS (false): one request each"
	is "$(reqs $mt),$(reqs $wn)" "2,2" \
		"h2-direct $h2: MPNS (true) and WNS (NULL): sent again once"
	is "$(final $mt)|$(final $wn)" "sent|200|2|sent|200|2" \
		"  and delivered on the second attempt"
	daemon_stop 10
done

fake_stop
done_testing
