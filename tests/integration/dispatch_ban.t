#!/usr/bin/env bash
# dispatch_ban.t - bans and pauses are plain UPDATEs of push.apps, applied
# by a running daemon within 1 s: a banned app's new pushes finish as
# dropped_banned (counted, never sent to the provider) while another app
# keeps sending; lifting the ban resumes delivery; a paused app's pushes
# stay in the queue unleased; resuming delivers them. Then the same against
# a backlog being sent slowly: pausing stops sending within 1 s and gives
# the rest back unleased; banning drops the rest as dropped_banned.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"

DB=dispatch_ban
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start

A=$(fcm_app $DB ban-a)
B=$(fcm_app $DB ban-b)
daemon_start $DB
wait_for $DB "SELECT state = 'running' FROM push.dispatchers" 10
ok $? "the daemon is running"

# enqueue APP TAG N: N token pushes tagged TAG (in the token and title).
enqueue() {
	q $DB "INSERT INTO push.pushes (app_id, platform, token, payload)
	       SELECT $1, 'fcm', '$2-token-' || lpad(i::text, 6, '0'),
	              '{\"title\":\"$2\"}'
	       FROM generate_series(1, $3) i" >/dev/null
}
# outcomes TAG: "outcome:count ..." of the pushes tagged TAG
outcomes() {
	q $DB "SELECT string_agg(outcome || ':' || n, ' ' ORDER BY outcome)
	       FROM (SELECT x.outcome, count(*) n FROM push.deliveries x
	             JOIN push.pushes p ON p.id = x.push_id
	             WHERE p.payload ->> 'title' = '$1' GROUP BY 1) s"
}
done_tag() { # done_tag TAG N SECS: wait until N pushes tagged TAG finished
	wait_for $DB "SELECT count(*) >= $2 FROM push.deliveries x
	              JOIN push.pushes p ON p.id = x.push_id
	              WHERE p.payload ->> 'title' = '$1'
	                AND x.outcome <> 'retry'" "$3"
}
fake_saw() { fcm_log_tokens | grep -c "^$1-token-"; }

enqueue $A before 50
done_tag before 50 10
is "$(outcomes before)" "sent:50" "before the ban: app A's pushes are sent"

q $DB "UPDATE push.apps SET banned_until = now() + interval '1 hour',
       ban_reason = 'test' WHERE id = $A" >/dev/null
sleep 1
enqueue $A banned 200
enqueue $B other 50
done_tag banned 200 10
ok $? "pushes of the banned app finish"
is "$(outcomes banned)" "dropped_banned:200" \
	"1 s after the UPDATE, every new push of the banned app is dropped_banned"
is "$(q $DB "SELECT count(*) FROM push.deliveries x JOIN push.pushes p
             ON p.id = x.push_id WHERE p.payload ->> 'title' = 'banned'
             AND x.provider_reason LIKE '%test%' AND x.sent_at IS NULL")" 200 \
	"  with the ban reason, never sent"
is "$(fake_saw banned)" 0 "  the fake saw none of them"
done_tag other 50 10
is "$(outcomes other)" "sent:50" "another app keeps sending meanwhile"
wait_for $DB "SELECT coalesce(sum(count), 0) = 200 FROM push.stats_minute
              WHERE app_id = $A AND outcome = 'dropped_banned'" 10
ok $? "the drops are counted in push.stats_minute"

q $DB "UPDATE push.apps SET banned_until = NULL, ban_reason = NULL
       WHERE id = $A" >/dev/null
sleep 1
enqueue $A unbanned 50
done_tag unbanned 50 10
is "$(outcomes unbanned)" "sent:50" "lifting the ban resumes delivery"
is "$(fake_saw unbanned)" 50 "  the fake got them"

q $DB "UPDATE push.apps SET paused = true WHERE id = $A" >/dev/null
sleep 1
enqueue $A paused 50
enqueue $B other2 20
done_tag other2 20 10
sleep 1.5   # several poll intervals and claims of the other app
is "$(q $DB "SELECT count(*), count(*) FILTER (WHERE lease_owner IS NULL
               AND lease_expires_at IS NULL)
             FROM push.queue WHERE app_id = $A")" "50|50" \
	"a paused app's pushes stay in the queue, unleased"
is "$(outcomes paused)$(fake_saw paused)" "0" "  none delivered or sent"
is "$(outcomes other2)" "sent:20" "  while another app's are sent"

t0=$(now_ms)
q $DB "UPDATE push.apps SET paused = false WHERE id = $A" >/dev/null
done_tag paused 50 10
ok $? "resuming delivers the held pushes ($(( $(now_ms) - t0 )) ms)"
is "$(outcomes paused)" "sent:50" "  all sent"

# The same with a backlog in flight: a slow provider (100-200 ms per
# answer) and 3,000 queued. Within 1 s of the UPDATE nothing more is sent;
# paused pushes go back to the queue unleased, banned ones are dropped.
ctl POST /latency '{"provider":"fcm","distribution":"uniform","min_ms":100,"max_ms":200}' >/dev/null
sent_now() { # sent_now TAG: how many pushes tagged TAG the fake answered
	q $DB "SELECT count(*) FROM push.deliveries x JOIN push.pushes p
	       ON p.id = x.push_id WHERE p.payload ->> 'title' = '$1'
	       AND x.outcome = 'sent'"
}
enqueue $A backlog 3000
wait_for $DB "SELECT count(*) >= 300 FROM push.deliveries x
              JOIN push.pushes p ON p.id = x.push_id
              WHERE p.payload ->> 'title' = 'backlog'" 20
ok $? "a backlog of 3,000 is being sent slowly"
q $DB "UPDATE push.apps SET paused = true WHERE id = $A" >/dev/null
sleep 1
n1=$(sent_now backlog); sleep 1; n2=$(sent_now backlog)
is "$n2" "$n1" "paused mid-backlog: 1 s after the UPDATE nothing more is sent ($n1 sent)"
is "$(q $DB "SELECT count(*) > 0, count(*) FILTER (WHERE lease_owner IS NOT NULL)
             FROM push.queue WHERE app_id = $A")" "t|0" \
	"  the rest is back in the queue, unleased"
q $DB "UPDATE push.apps SET paused = false, banned_until = now() + interval '1 hour',
       ban_reason = 'test again' WHERE id = $A" >/dev/null
sleep 1
n1=$(sent_now backlog)
done_tag backlog 3000 20
ok $? "unpaused but banned: the backlog finishes"
is "$(sent_now backlog)" "$n1" "  1 s after the ban nothing more is sent"
is "$(q $DB "SELECT count(*) = 3000 - $n1 FROM push.deliveries x
             JOIN push.pushes p ON p.id = x.push_id
             WHERE p.payload ->> 'title' = 'backlog'
               AND x.outcome = 'dropped_banned'")" t \
	"  everything not sent before is dropped_banned"
is "$(fcm_log_tokens | grep -c '^backlog-token-')" "$n1" \
	"  the fake saw only the pushes that were sent"

daemon_stop 10
fake_stop
done_testing
