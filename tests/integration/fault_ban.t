#!/usr/bin/env bash
# fault_ban.t - the auto-ban on other senders than FCM: an APNs app whose
# JWTs are signed with the wrong key (403 InvalidProviderToken) and a WNS
# app with a wrong client secret (the OAuth token is refused) are banned
# after their threshold (banned_by = 'pgpushd', a reason naming auth/config
# failures) and their other pushes dropped_banned; a healthy APNs app on
# the same fake is unaffected; lifting the ban (admin-sql/unban_app.sql)
# lets pushes flow again once the cause is fixed.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"
. "$(dirname "$0")/../harness/apns.sh"
. "$(dirname "$0")/../harness/msft.sh"
. "$(dirname "$0")/../harness/fault.sh"

DB=fault_ban
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
apns_fake_start "$WNS_FAKE_CLIENT"
GOOD=$(apns_app $DB agood)
# Threshold 3: the first 403 InvalidProviderToken answers fail their
# pushes (auth failures); the others wait for the next mint (20 minutes),
# which is the sender's own wait and not counted.
BADA=$(apns_app $DB abad "$APNS_TEAM" "$APNS_KID" "$CERTS/apns-wrong.p8" \
	", autoban_threshold" ", 3")
BADW=$(wns_app $DB wbad store ", autoban_threshold" ", 5")
q $DB "UPDATE push.wns_credentials SET client_secret = 'not-the-secret'
       WHERE app_id = $BADW" >/dev/null
apns_enqueue $DB "$GOOD" good 20
apns_enqueue $DB "$BADA" bada 30
q $DB "INSERT INTO push.pushes (app_id, platform, token, payload)
       SELECT $BADW, 'wns', '$(wns_channel wbad)' || i, '{\"title\":\"t\"}'
       FROM generate_series(1, 30) i" >/dev/null

disp_start 1 $DB
for app in "$BADA:3:APNs wrong signing key" "$BADW:5:WNS wrong client secret"; do
	id=${app%%:*} what=${app#*:*:} th=${app#*:}; th=${th%%:*}
	wait_for $DB "SELECT banned_until > now() FROM push.apps WHERE id = $id" 30
	ok $? "$what: auto-banned"
	like "$(q $DB "SELECT banned_by || '|' || ban_reason FROM push.apps WHERE id = $id")" \
		"^pgpushd\\|auto-ban: $th signals in 60s \\(threshold $th\\): [0-9] auth/config failures" \
		"  banned_by pgpushd, the reason names auth/config failures"
	# Pushes due now are dropped; those waiting for a later retry are
	# dropped when due, if the ban still lasts.
	wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue WHERE app_id = $id
	              AND not_before <= now())" 30
	ok $? "  its due pushes leave the queue"
	diag "$what: $(q $DB "SELECT string_agg(outcome || '=' || n, ' ') FROM
	  (SELECT outcome, count(*) n FROM push.deliveries WHERE app_id = $id
	   GROUP BY 1 ORDER BY 1) x"), still waiting for a retry: $(q $DB "SELECT
	  count(*) FROM push.queue WHERE app_id = $id")"
	is "$(q $DB "SELECT count(DISTINCT queue_id) = count(*)
	               AND count(*) FILTER (WHERE outcome = 'sent') = 0
	             FROM push.deliveries WHERE app_id = $id AND outcome <> 'retry'")" t \
		"  no push finished twice, nothing sent"
	# While banned, new pushes are dropped (counted), never sent.
	q $DB "INSERT INTO push.pushes (app_id, platform, token, payload)
	       SELECT $id, p.platform, p.token || 'b' || i, p.payload
	       FROM (SELECT platform, token, payload FROM push.pushes
	             WHERE app_id = $id LIMIT 1) p, generate_series(1, 10) i" >/dev/null
	wait_for $DB "SELECT count(*) = 10 FROM push.deliveries
	              WHERE app_id = $id AND outcome = 'dropped_banned'" 20
	ok $? "  10 pushes enqueued while banned: dropped_banned, each once"
	like "$(q $DB "SELECT DISTINCT provider_reason FROM push.deliveries
	               WHERE app_id = $id AND outcome = 'dropped_banned'")" \
		'^app banned: auto-ban: ' "  with the ban's reason"
	is "$(q $DB "SELECT count(*) FROM push.deliveries WHERE app_id = $id
	             AND (provider_reason LIKE '%not-the-secret%'
	               OR provider_reason LIKE '%PRIVATE KEY%')")" 0 "  no secret in any reason"
done
wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue WHERE app_id = $GOOD)" 30
is "$(q $DB "SELECT count(*) || '|' || count(DISTINCT queue_id) FROM push.deliveries
             WHERE app_id = $GOOD AND outcome = 'sent'")" "20|20" \
	"the healthy APNs app on the same provider: every push sent once"
is "$(q $DB "SELECT banned_until IS NULL FROM push.apps WHERE id = $GOOD")" t "  not banned"

# Fix the cause, lift the ban: pushes flow again.
q $DB "UPDATE push.wns_credentials SET client_secret = '$WNS_SECRET'
       WHERE app_id = $BADW" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -v app=wbad -d $DB \
	-f "$PGPUSH_TOP/admin-sql/unban_app.sql" >/dev/null 2>&1
ok $? "admin-sql/unban_app.sql lifts the ban"
q $DB "INSERT INTO push.pushes (app_id, platform, token, payload)
       VALUES ($BADW, 'wns', '$(wns_channel wbad)after', '{\"title\":\"t\"}')" >/dev/null
wait_for $DB "SELECT EXISTS (SELECT 1 FROM push.deliveries WHERE app_id = $BADW
              AND outcome = 'sent')" 20
ok $? "  after it, the fixed app's new push is sent"
ok "$(disp_alive 1; echo $?)" "the dispatcher kept running"
disp_stop 1
fake_stop
done_testing
