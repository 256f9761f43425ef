#!/usr/bin/env bash
# fault_badinput.t - input that passes the insert checks but not the
# provider: a device token FCM rejects, a payload whose FCM request is too
# large once built, a corrupted service-account key.  Each push gets a clear
# failure reason (no secret in it), the daemon keeps running, and another
# app's pushes are sent as usual.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"
. "$(dirname "$0")/../harness/fault.sh"

DB=fault_badinput
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start
GOOD=$(fcm_app $DB good)
BAD=$(fcm_app $DB bad)
CORRUPT=$(fcm_app $DB corrupt)
SECRET='corrupted-key-material-c4n4ry'
q $DB "UPDATE push.fcm_credentials
       SET service_account = jsonb_set(service_account, '{private_key}',
         to_jsonb('-----BEGIN PRIVATE KEY-----\n$SECRET\n-----END PRIVATE KEY-----\n'::text))
       WHERE app_id = $CORRUPT" >/dev/null

enqueue_tokens $DB "$GOOD" good 20
enqueue_tokens $DB "$CORRUPT" corrupt 5
# '.' passes the insert check (FCM tokens may have it) but the fake, like
# FCM for this project, rejects it.
q $DB "INSERT INTO push.devices (app_id, platform, token)
       VALUES ($BAD, 'fcm', 'dotted.token.for-fcm-0001'),
              ($BAD, 'fcm', 'big-payload-token-0001')" >/dev/null
q $DB "INSERT INTO push.pushes (app_id, device_id, payload)
       SELECT $BAD, id, '{\"title\":\"t\"}' FROM push.devices
       WHERE token = 'dotted.token.for-fcm-0001'" >/dev/null
# The neutral title fits the insert check (4096), but FCM carries it twice
# (notification, and the APNs alert when there is a subtitle), so the built
# message is too large.
big=$(head -c 2500 /dev/zero | tr '\0' x)
q $DB "INSERT INTO push.pushes (app_id, device_id, payload)
       SELECT $BAD, id, '{\"title\":\"$big\",\"subtitle\":\"s\"}' FROM push.devices
       WHERE token = 'big-payload-token-0001'" >/dev/null
ok $? "the big payload passes the insert checks"

disp_start 1 $DB
wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)" 40
ok $? "every push is finished"
is "$(q $DB "SELECT count(*) || '|' || count(DISTINCT queue_id) FROM push.deliveries
             WHERE app_id = $GOOD AND outcome = 'sent'")" "20|20" \
	"the other app's pushes are all sent, once"
final() { # final TOKEN: outcome|reason of its push
	q $DB "SELECT d.outcome || '|' || coalesce(d.provider_reason, '')
	       FROM push.deliveries d JOIN push.devices v ON v.id = d.device_id
	       WHERE v.token = '$1' AND d.outcome <> 'retry'"
}
like "$(final dotted.token.for-fcm-0001)" '^invalid_token\|INVALID_ARGUMENT' \
	"a token the provider rejects: invalid_token, the provider's reason"
like "$(q $DB "SELECT invalid_reason FROM push.devices
               WHERE token = 'dotted.token.for-fcm-0001'")" '^fcm:INVALID_ARGUMENT' \
	"  and the device is invalidated"
is "$(final big-payload-token-0001)" 'failed|payload too large' \
	"a message too large once built: failed, 'payload too large'"
is "$(fcm_requests_for_app big-payload)" 0 "  never sent"
is "$(q $DB "SELECT count(*) FROM push.deliveries WHERE app_id = $CORRUPT
             AND outcome = 'failed' AND provider_reason LIKE 'credential unusable: %'")" 5 \
	"a corrupted service-account key: each push failed, 'credential unusable: ...'"
diag "reason: $(q $DB "SELECT provider_reason FROM push.deliveries WHERE app_id = $CORRUPT LIMIT 1")"
is "$(q $DB "SELECT count(*) FROM push.deliveries
             WHERE provider_reason LIKE '%$SECRET%' OR provider_reason LIKE '%PRIVATE KEY-----%'")" 0 \
	"  no key material in any failure reason"
ok "$(grep -q "$SECRET" "${DLOG[1]}"; [ $? -ne 0 ]; echo $?)" "  nor in the daemon's log"
ok "$(disp_alive 1; echo $?)" "the daemon keeps running"
disp_stop 1
fake_stop
done_testing
