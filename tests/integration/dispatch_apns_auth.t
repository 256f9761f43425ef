#!/usr/bin/env bash
# dispatch_apns_auth.t - APNs provider tokens against the fake, which
# verifies every JWT (ES256 signature with the registered key, kid, iss,
# iat) and, here, treats tokens older than 3 s as Apple treats those older
# than an hour.  The daemon runs with a 2-second mint floor
# (PGPUSH_APNS_JWT_FLOOR_S, test-only) and then with the default 20 minutes:
#   - the JWT is accepted: kid, iss as configured, 200;
#   - an expired token (older than the fake's max age) is refused with 403
#     ExpiredProviderToken; the daemon mints a new one and resends: every
#     push sent on its first attempt;
#   - an ExpiredProviderToken storm: new tokens are minted no faster than
#     the floor (distinct iat in the fake's log, gaps >= 2 s), and the
#     pushes go out once it is over;
#   - 429 TooManyProviderTokenUpdates: the push is retried later (reason
#     recorded), minting waits a floor each time, and once APNs takes a
#     new token everything is sent;
#   - a key APNs does not know: 403 InvalidProviderToken on a token's
#     first use -> failed at once, with a reason that names the columns
#     to check, not resent with another token;
#   - with the default floor, a storm causes no new mint at all and the
#     pushes are retried no sooner than 20 minutes after the last mint;
#   - with the default floor, 403 InvalidProviderToken / MissingProviderToken
#     for a token APNs had accepted: like ExpiredProviderToken, the push is
#     retried when the floor allows a new token (not failed).
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"
. "$(dirname "$0")/../harness/apns.sh"

DB=dispatch_apns_auth
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
apns_fake_start --apns-jwt-max-age 3 --apns-jwt-min-refresh 2

APP=$(apns_app $DB apns-auth)
WRONG=$(apns_app $DB apns-wrong-key WRONGTEAM1 WRONGKEY01 "$CERTS/apns-wrong.p8")
drained() { wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue
                           WHERE app_id = $APP)" "${1:-30}"; }
final_of() { # TAG: distinct "outcome|attempt" of final rows, with counts
	q $DB "SELECT string_agg(o || ':' || n, ',' ORDER BY o) FROM (
	         SELECT x.outcome || '|' || x.attempt o, count(*) n
	         FROM push.deliveries x JOIN push.pushes p ON p.id = x.push_id
	         WHERE p.token LIKE '$(apns_tok "$1")%' AND x.outcome <> 'retry'
	         GROUP BY 1) s"
}
retries_of() {
	q $DB "SELECT count(*) FROM push.deliveries x JOIN push.pushes p
	       ON p.id = x.push_id WHERE p.token LIKE '$(apns_tok "$1")%'
	       AND x.outcome = 'retry'"
}
# gaps_ok FILE: iat gaps between consecutive tokens all >= 2 s
gaps_ok() { awk 'NR > 1 && $1 - prev < 2 {bad = 1} {prev = $1} END {exit bad}' "$1"; }

export PGPUSH_APNS_JWT_FLOOR_S=2 PGPUSH_APNS_JWT_REFRESH_S=3000
daemon_start $DB
unset PGPUSH_APNS_JWT_FLOOR_S PGPUSH_APNS_JWT_REFRESH_S

# --- the token is accepted
apns_enqueue $DB $APP a 20
drained; ok $? "first batch drained"
is "$(final_of a)" "sent|1:20" "all 20 sent on the first attempt"
is "$(apns_log | head -n 1 | awk '{print $3, $5, $6}')" \
	"200 $APNS_TEAM $APNS_KID" "the first request's JWT: iss, kid, accepted"

# --- it ages past the fake's limit (iat in whole seconds): refused,
# re-minted, resent
sleep 4.5
t0=$(now_ms)
apns_enqueue $DB $APP b 20
drained; ok $? "second batch drained"
is "$(final_of b)|$(retries_of b)" "sent|1:20|0" \
	"after expiry: all 20 sent on the first attempt, no retry"
is "$(apns_log | awk -v p="$(apns_tok b)" 'index($2, p) == 1 && $3 == 403 {print $4}' | sort -u)" \
	"ExpiredProviderToken" "  the fake refused the old token (ExpiredProviderToken)"
apns_jwts "$t0" >"$DT/jwts.b"
is "$(wc -l <"$DT/jwts.b" | tr -d ' ')" 2 "  the old token and one new one were used"
is "$(q $DB "SELECT count(*) FROM push.deliveries WHERE outcome <> 'sent'")" 0 \
	"  nothing but sent rows so far"

# --- an ExpiredProviderToken storm of 6 s: mints no faster than the floor
sleep 2
t1=$(now_ms)
ctl POST /mode '{"provider":"apns","status":403,"reason":"ExpiredProviderToken","seconds":6}' >/dev/null
for i in $(seq 1 12); do
	apns_enqueue $DB $APP "c$i" 5
	sleep 0.5
done
t2=$(( t1 + 6000 ))
drained 40; ok $? "storm batches drained"
apns_jwts "$t1" "$t2" >"$DT/jwts.c"
n=$(wc -l <"$DT/jwts.c" | tr -d ' ')
diag "tokens used during the storm: $(awk '{print $1}' "$DT/jwts.c" | paste -sd' ')"
ok "$([ "$n" -ge 2 ] && [ "$n" -le 4 ]; echo $?)" \
	"during 6 s of ExpiredProviderToken: $n tokens (re-minted, at most 6/2+1)"
gaps_ok "$DT/jwts.c"; ok $? "  consecutive tokens' iat at least the 2 s floor apart"
is "$(for i in $(seq 1 12); do final_of "c$i"; done | sed 's/|[0-9]*:[0-9]*//' | sort -u | paste -sd,)" \
	"sent" "  every storm push was sent in the end"

# --- 429 TooManyProviderTokenUpdates: keep retrying later, mint at the floor
ctl POST /config '{"apns_jwt_min_refresh":3600}' >/dev/null
sleep 3.2
t3=$(now_ms)
apns_enqueue $DB $APP e 10
sleep 5
t4=$(now_ms)
ctl POST /config '{"apns_jwt_min_refresh":0}' >/dev/null
drained 40; ok $? "429 batch drained once APNs took a new token"
is "$(final_of e | sed 's/|[0-9]*:/:/')" "sent:10" "  all 10 sent in the end"
# While minting is refused the daemon falls back on the last accepted
# token, which the fake (tokens last 3 s here) may already call expired:
# an ExpiredProviderToken retry then is right too, depending on timing.
reasons=$(q $DB "SELECT string_agg(DISTINCT provider_reason COLLATE \"C\", ',')
             FROM push.deliveries x JOIN push.pushes p ON p.id = x.push_id
             WHERE p.token LIKE '$(apns_tok e)%' AND x.outcome = 'retry'")
is "${reasons#ExpiredProviderToken,}" \
	"TooManyProviderTokenUpdates,provider token refused; waiting to mint a new one" \
	"  retried later: TooManyProviderTokenUpdates, then waiting for the floor"
apns_jwts "$t3" "$t4" >"$DT/jwts.e"
diag "tokens tried during the 429s: $(awk '{print $1}' "$DT/jwts.e" | paste -sd' ')"
gaps_ok "$DT/jwts.e"; ok $? "  tokens minted at least the floor apart meanwhile"
ok "$([ "$(wc -l <"$DT/jwts.e")" -le 4 ]; echo $?)" "  at most 5/2+2 tokens in those 5 s"

# --- a key APNs does not know
apns_enqueue $DB $WRONG w 3
wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue WHERE app_id = $WRONG)" 20
is "$(q $DB "SELECT string_agg(DISTINCT outcome || '|' || provider_status || '|'
               || provider_reason, ',')
             FROM push.deliveries WHERE app_id = $WRONG AND outcome <> 'retry'")" \
	"failed|403|InvalidProviderToken (refused on first use: check team_id, key_id and signing_key)" \
	"unknown key: failed, InvalidProviderToken, the columns to check"
is "$(apns_log | awk '$5 == "WRONGTEAM1"' | wc -l | tr -d ' ')" \
	"$(q $DB "SELECT count(*) FROM push.deliveries WHERE app_id = $WRONG
	          AND provider_status = 403")" \
	"  one request per refusal recorded: never resent with another token"
gaps_ok <(apns_jwts 0 | awk '$3 == "WRONGTEAM1"')
ok $? "  its re-mints too are at least the floor apart"

daemon_stop 10

# --- the default floor: a storm causes no new mint
ctl POST /config '{"apns_jwt_max_age":3600,"apns_jwt_min_refresh":0}' >/dev/null
t5=$(now_ms)
daemon_start $DB
apns_enqueue $DB $APP d1 5
drained; ok $? "default floor: first batch drained"
ctl POST /mode '{"provider":"apns","status":403,"reason":"ExpiredProviderToken","seconds":3}' >/dev/null
apns_enqueue $DB $APP d2 5
wait_for $DB "SELECT count(*) = 5 FROM push.deliveries x JOIN push.pushes p
              ON p.id = x.push_id WHERE p.token LIKE '$(apns_tok d2)%'" 20
ok $? "default floor: the storm's pushes have an answer"
is "$(apns_jwts "$t5" | wc -l | tr -d ' ')" 1 \
	"  one token minted, none during the storm"
is "$(q $DB "SELECT string_agg(DISTINCT outcome || '|' ||
               (retry_at - finished_at > interval '19 min')::text, ',')
             FROM push.deliveries x JOIN push.pushes p ON p.id = x.push_id
             WHERE p.token LIKE '$(apns_tok d2)%'")" \
	"retry|true" \
	"  retried no sooner than the 20-minute floor allows a new token"
daemon_stop 10

# --- the default floor, a token APNs accepted, then called invalid or
# missing: a new token may help, so the push waits for the floor instead
# of failing
ctl POST /reset >/dev/null      # the storm's mode may still be on
daemon_start $DB
apns_enqueue $DB $APP f1 3
wait_for $DB "SELECT count(*) = 3 FROM push.deliveries x JOIN push.pushes p
              ON p.id = x.push_id WHERE p.token LIKE '$(apns_tok f1)%'
              AND x.outcome = 'sent'" 20
ok $? "default floor, a new daemon: its token is accepted"
for r in InvalidProviderToken MissingProviderToken; do
	ctl POST /rules "{\"provider\":\"apns\",\"token\":\"$(apns_tok "$r")0001\",
	                 \"status\":403,\"reason\":\"$r\",\"times\":1}" >/dev/null
done
# In one statement: both go out on the accepted token (the first refusal
# marks it refused, so a later push would wait for the floor unsent).
q $DB "INSERT INTO push.pushes (app_id, platform, token, payload)
       SELECT $APP, 'apns', t || '0001', '{\"title\":\"t\"}'
       FROM unnest(ARRAY['$(apns_tok InvalidProviderToken)',
                         '$(apns_tok MissingProviderToken)']) t" >/dev/null
wait_for $DB "SELECT count(*) = 2 FROM push.deliveries x JOIN push.pushes p
              ON p.id = x.push_id WHERE p.token IN
              ('$(apns_tok InvalidProviderToken)0001',
               '$(apns_tok MissingProviderToken)0001')" 20
ok $? "an accepted token refused as invalid / missing: answers recorded"
for r in InvalidProviderToken MissingProviderToken; do
	is "$(q $DB "SELECT outcome || '|' || provider_reason || '|' ||
	               (retry_at - finished_at > interval '19 min')::text
	             FROM push.deliveries x JOIN push.pushes p ON p.id = x.push_id
	             WHERE p.token = '$(apns_tok "$r")0001'")" \
		"retry|$r|true" \
		"  $r after the token worked: retried when the floor allows a new token"
done
daemon_stop 10
fake_stop
done_testing
