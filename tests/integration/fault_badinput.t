#!/usr/bin/env bash
# fault_badinput.t - input that passes the insert checks but not the
# provider: a device token FCM rejects, a payload whose FCM request is too
# large once built, a corrupted service-account key.  Each push gets a clear
# failure reason (no secret in it), the daemon keeps running, and another
# app's pushes are sent as usual.
#
# Then rows planted past the insert checks (written as a superuser straight
# into push.pushes and push.queue, as a restore or a bug could), each with
# a value a sender would put into a header or a URL:
#   APNs  collapse_key with CR LF (apns-collapse-id), a token that walks
#         the URL path to another device (/3/device/<token>), push_type
#         with CR LF (apns-push-type), priority as a string (apns-priority),
#         a payload nested 20 levels (parsed no deeper than 16)
#   WNS   wns.tag with CR LF (X-WNS-Tag), channel URLs with a control
#         character and with raw UTF-8
#   MPNS  a channel URL with DEL
# The daemon fails each with a reason and sends none of them: the fake
# never sees their token, nor any injected header.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"
. "$(dirname "$0")/../harness/fault.sh"
. "$(dirname "$0")/../harness/apns.sh"
. "$(dirname "$0")/../harness/msft.sh"

DB=fault_badinput
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
apns_fake_start "$WNS_FAKE_CLIENT"
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

# Rows planted past the insert checks -------------------------------------
APNS=$(apns_app $DB hv_apns)
WNS=$(wns_app $DB hv_wns)
MPNS=$(mpns_app $DB hv_mpns)
VICTIM=$(apns_tok hv-victim)
# hv_push TAG PLATFORM TOKEN: a good push, enqueued the normal way.
hv_push() {
	q $DB "INSERT INTO push.pushes (app_id, platform, token, payload,
	         collapse_key, idempotency_key)
	       VALUES ((SELECT id FROM push.apps WHERE name = 'hv_$2'), '$2',
	         '$3', '{\"title\":\"t\"}', 'ck', 'hv-$1')" >/dev/null
}
hv_push ck apns "$(apns_tok hv-ck)"
hv_push path apns "$(apns_tok hv-path)"
hv_push type apns "$(apns_tok hv-type)"
hv_push prio apns "$(apns_tok hv-prio)"
hv_push deep apns "$(apns_tok hv-deep)"
hv_push good apns "$(apns_tok hv-good)"
hv_push tag wns "$(wns_channel hv-tag)"
hv_push ctl wns "$(wns_channel hv-ctl)"
hv_push utf wns "$(wns_channel hv-utf)"
hv_push del mpns "$(mpns_channel hv-del)"
# plant KEY SET-ON-PUSHES [SET-ON-QUEUE]: corrupt the push with that key.
plant() {
	q $DB "UPDATE push.pushes SET $2 WHERE idempotency_key = 'hv-$1'" \
		>/dev/null &&
	if [ -n "${3:-}" ]; then
		q $DB "UPDATE push.queue SET $3 WHERE push_id = (SELECT id
		       FROM push.pushes WHERE idempotency_key = 'hv-$1')" >/dev/null
	fi
}
deep="{\"title\":\"t\",\"data\":$(printf '{\"a\":%.0s' $(seq 19))1$(printf '}%.0s' $(seq 19))}"
plant ck "collapse_key = E'ck\\r\\nx-injected: 1'"
plant path "collapse_key = NULL" \
	"token = '$(apns_tok hv-path)/../../../3/device/$VICTIM'"
plant type "payload = '{\"title\":\"t\",\"apns\":{\"push_type\":\"alert\\r\\nx-injected: 1\"}}'"
plant prio "payload = '{\"title\":\"t\",\"apns\":{\"priority\":\"10\\r\\nx-injected: 1\"}}'"
plant deep "payload = '$deep'"
plant tag "payload = '{\"title\":\"t\",\"wns\":{\"tile\":true,\"tag\":\"a\\r\\nx-injected: 1\"}}'"
plant ctl "collapse_key = NULL" "token = token || E'\\x01x'"
plant utf "collapse_key = NULL" "token = token || 'ü'"
plant del "collapse_key = NULL" "token = token || E'\\x7fx'"
is "$(q $DB "SELECT count(*) FROM push.queue q JOIN push.pushes p
             ON p.id = q.push_id WHERE p.idempotency_key LIKE 'hv-%'")" 10 \
	"ten pushes planted in the queue past the insert checks"

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

# hv KEY: outcome|reason of the planted push with that key.
hv() {
	q $DB "SELECT string_agg(d.outcome || '|' || coalesce(d.provider_reason,
	         ''), ';') FROM push.deliveries d JOIN push.pushes p
	       ON p.id = d.push_id WHERE p.idempotency_key = 'hv-$1'"
}
is "$(hv ck)" "failed|BadCollapseId: collapse_key is not a valid header value (control character, or a space at either end)" \
	"planted APNs collapse_key with CR LF: failed, reason names collapse_key"
is "$(hv path)" "failed|BadDeviceToken: the device token is not a valid URL path segment" \
	"planted APNs token with a path: failed, reason names the token"
is "$(hv type)" "failed|apns.push_type is not a known push type" \
	"planted apns.push_type with CR LF: failed"
is "$(hv prio)" "failed|apns.priority must be 10, 5 or 1" \
	"planted apns.priority as a string: failed"
is "$(hv deep)" "failed|payload nests deeper than 16 levels of objects and arrays" \
	"planted payload nested 20 levels: failed, reason names the limit"
is "$(hv good)" "sent|" "the good APNs push beside them is sent"
is "$(hv tag)" "failed|wns.tag must be 1 to 16 letters or digits" \
	"planted wns.tag with CR LF: failed"
for k in ctl utf; do
	like "$(hv $k)" '^failed\|channel URL' \
		"planted WNS channel URL ($k): failed, reason names the channel URL"
done
like "$(hv del)" '^failed\|channel URL' \
	"planted MPNS channel URL with DEL: failed, reason names the channel URL"
is "$(grep -ci 'x-injected' "$DT/requests.log")" 0 \
	"no request the fake received carries an injected header"
is "$(apns_log | awk -v v="$VICTIM" '$2 == v' | wc -l)" 0 \
	"no request reached the device the token's path pointed at"
is "$(apns_log | grep -cE "$(apns_tok hv-ck)|$(apns_tok hv-path)|$(apns_tok hv-type)|$(apns_tok hv-prio)|$(apns_tok hv-deep)")" 0 \
	"no planted APNs push reached the fake"
is "$(grep -cE 'hv-(tag|ctl|utf|del)' "$DT/requests.log")" 0 \
	"no planted WNS or MPNS push reached the fake"
disp_stop 1
fake_stop
done_testing
