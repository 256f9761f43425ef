#!/usr/bin/env bash
# admin_sql.t - every script of admin-sql/ on a seeded database, run with
# psql as a login role that is a member of pgpush_admin (what an admin
# uses): ban/unban, pause/resume, app_health's numbers, cancel_campaign,
# requeue_failed (exactly the failed ones, a no-op when run again, never
# double-queued by two concurrent runs, NOTIFY), purge_deliveries; and that
# each script fails with a clear message and a non-zero exit for a missing
# variable and for an unknown app.
. "$(dirname "$0")/../harness/lib.sh"
plan 90

db=admin_sql
admin=pgpush_admin_sql_t
analyst=pgpush_analyst_sql_t
fresh_db "$db"
tmpd=$(mktemp -d)
trap 'rc=$?; rm -rf "$tmpd"; (exit $rc); _tap_finish' EXIT
export PGTZ=UTC   # partition names and bounds are UTC days
q "$db" "DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$admin') THEN
    CREATE ROLE $admin LOGIN IN ROLE pgpush_admin;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$analyst') THEN
    CREATE ROLE $analyst LOGIN IN ROLE pgpush_analyst;
  END IF; END \$\$" >/dev/null

# run SCRIPT [psql -v args] - run admin-sql/SCRIPT.sql as the admin role,
# unaligned; stdout and stderr together. Sets $rc.
run() {
	local f=$1; shift
	out=$(psql -X -q -A -U "$admin" -d "$db" "$@" \
		-f "$PGPUSH_TOP/admin-sql/$f.sql" 2>&1)
	rc=$?
}

# --- seed --------------------------------------------------------------
# Two apps. Pushes are labelled by collapse_key; pg_temp.finish() records a
# delivery the way the dispatcher would (and deletes the queue row unless
# told to keep it).
q "$db" "
INSERT INTO push.apps (name) VALUES ('shop'), ('games');
SELECT push.register_device(push.app_id('shop'), 'apns', repeat('a1', 32), 'u1');
SELECT push.register_device(push.app_id('shop'), 'apns', repeat('a2', 32));
SELECT push.register_device(push.app_id('shop'), 'apns', repeat('a3', 32));
SELECT push.register_device(push.app_id('shop'), 'apns', repeat('a4', 32));
SELECT push.register_device(push.app_id('shop'), 'fcm', 'fcm-token-f1-0000', 'u1');
SELECT push.register_device(push.app_id('shop'), 'fcm', 'fcm-token-f2-0000');
SELECT push.register_device(push.app_id('shop'), 'fcm', 'fcm-token-f3-0000');
SELECT push.register_device(push.app_id('games'), 'apns', repeat('b1', 32));
INSERT INTO push.campaigns (app_id, name, payload_template, state)
VALUES (push.app_id('shop'), 'bf', '{\"title\": \"sale\"}', 'running');

CREATE FUNCTION pg_temp.dev(p_token text) RETURNS bigint
LANGUAGE sql AS \$\$ SELECT id FROM push.devices WHERE token = p_token \$\$;
CREATE FUNCTION pg_temp.push(p_app text, p_label text, p_device_token text,
  p_created interval DEFAULT '0', p_ttl integer DEFAULT NULL,
  p_campaign text DEFAULT NULL) RETURNS void
LANGUAGE sql AS \$\$
  INSERT INTO push.pushes (app_id, device_id, payload, collapse_key,
    created_at, ttl, campaign_id)
  VALUES (push.app_id(p_app), pg_temp.dev(p_device_token),
    '{\"title\": \"t\", \"body\": \"b\"}', p_label, now() - p_created, p_ttl,
    (SELECT id FROM push.campaigns WHERE name = p_campaign))
\$\$;
CREATE FUNCTION pg_temp.finish(p_label text, p_token text,
  p_outcome push.outcome, p_ago interval, p_reason text,
  p_keep boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql AS \$\$
DECLARE q push.queue;
BEGIN
  SELECT * INTO STRICT q FROM push.queue qq
  WHERE push_id = (SELECT id FROM push.pushes WHERE collapse_key = p_label)
    AND coalesce(qq.token, (SELECT d.token FROM push.devices d
                            WHERE d.id = qq.device_id)) = p_token;
  INSERT INTO push.deliveries (finished_at, push_id, queue_id, app_id,
    platform, device_id, campaign_id, outcome, attempt, provider_status,
    provider_reason, enqueued_at)
  SELECT now() - p_ago, q.push_id, q.id, q.app_id, q.platform, q.device_id,
    p.campaign_id, p_outcome, 1, 400, p_reason, q.enqueued_at
  FROM push.pushes p WHERE p.id = q.push_id;
  IF NOT p_keep THEN
    DELETE FROM push.queue WHERE id = q.id;
  END IF;
END \$\$;

-- P1 failed: requeued.
SELECT pg_temp.push('shop', 'P1', repeat('a1', 32));
SELECT pg_temp.finish('P1', repeat('a1', 32), 'failed', '1 hour', 'BadTopic');
-- P2 failed, then sent: not requeued.
SELECT pg_temp.push('shop', 'P2', repeat('a2', 32));
SELECT pg_temp.finish('P2', repeat('a2', 32), 'failed', '2 hours', 'BadTopic', true);
SELECT pg_temp.finish('P2', repeat('a2', 32), 'sent', '1 hour', NULL);
-- P3 failed, device invalidated since: not requeued.
SELECT pg_temp.push('shop', 'P3', repeat('a3', 32));
SELECT pg_temp.finish('P3', repeat('a3', 32), 'failed', '150 minutes', 'BadTopic');
-- P4 token target, token not registered: requeued with the push's token.
INSERT INTO push.pushes (app_id, platform, token, payload, collapse_key)
VALUES (push.app_id('shop'), 'fcm', 'fcm-token-unregistered',
        '{\"title\": \"t\"}', 'P4');
SELECT pg_temp.finish('P4', 'fcm-token-unregistered', 'failed', '3 hours', 'INVALID_ARGUMENT');
-- P5 failed 30 hours ago: only with a longer 'since'.
SELECT pg_temp.push('shop', 'P5', 'fcm-token-f1-0000');
SELECT pg_temp.finish('P5', 'fcm-token-f1-0000', 'failed', '30 hours', 'INTERNAL');
-- P6 failed but queued again already: not requeued.
SELECT pg_temp.push('shop', 'P6', 'fcm-token-f1-0000');
SELECT pg_temp.finish('P6', 'fcm-token-f1-0000', 'failed', '1 hour', 'INVALID_ARGUMENT', true);
-- P7 user target on a1 and f1: a1 failed (requeued), f1 sent.
INSERT INTO push.pushes (app_id, user_id, payload, collapse_key)
VALUES (push.app_id('shop'), 'u1', '{\"title\": \"t\"}', 'P7');
SELECT pg_temp.finish('P7', repeat('a1', 32), 'failed', '1 hour', 'BadTopic');
SELECT pg_temp.finish('P7', 'fcm-token-f1-0000', 'sent', '1 hour', NULL);
-- P9 expired (ttl 60 s, two hours old): not requeued.
SELECT pg_temp.push('shop', 'P9', repeat('a2', 32), '2 hours', 60);
SELECT pg_temp.finish('P9', repeat('a2', 32), 'failed', '1 hour', 'BadTopic');
-- Q1, Q2 simply queued; Q1 for ten minutes.
SELECT pg_temp.push('shop', 'Q1', repeat('a2', 32), '10 minutes');
SELECT pg_temp.push('shop', 'Q2', 'fcm-token-f1-0000');
-- Campaign bf: C1, C2 queued; C3 leased; C4 under a lapsed lease; C5 failed.
SELECT pg_temp.push('shop', 'C1', repeat('a2', 32), p_campaign => 'bf');
SELECT pg_temp.push('shop', 'C2', 'fcm-token-f1-0000', p_campaign => 'bf');
SELECT pg_temp.push('shop', 'C3', repeat('a1', 32), p_campaign => 'bf');
SELECT pg_temp.push('shop', 'C4', repeat('a1', 32), p_campaign => 'bf');
SELECT pg_temp.push('shop', 'C5', repeat('a2', 32), p_campaign => 'bf');
SELECT pg_temp.finish('C5', repeat('a2', 32), 'failed', '1 hour', 'BadTopic');
UPDATE push.queue SET lease_owner = 'd1', lease_expires_at = now() + interval '5 minutes'
WHERE push_id = (SELECT id FROM push.pushes WHERE collapse_key = 'C3');
UPDATE push.queue SET lease_owner = 'd0', lease_expires_at = now() - interval '1 minute'
WHERE push_id = (SELECT id FROM push.pushes WHERE collapse_key = 'C4');
-- The other app's failure is never touched.
SELECT pg_temp.push('games', 'G1', repeat('b1', 32));
SELECT pg_temp.finish('G1', repeat('b1', 32), 'failed', '1 hour', 'BadTopic');
-- Invalidations: a3, a4 (apns:Unregistered, last 24 h), f3 (fcm, 5 h ago),
-- f2 (30 h ago, outside the window).
UPDATE push.devices SET invalidated_at = now() - interval '2 hours',
  invalid_reason = 'apns:Unregistered' WHERE token = repeat('a3', 32);
UPDATE push.devices SET invalidated_at = now() - interval '1 hour',
  invalid_reason = 'apns:Unregistered' WHERE token = repeat('a4', 32);
UPDATE push.devices SET invalidated_at = now() - interval '5 hours',
  invalid_reason = 'fcm:UNREGISTERED' WHERE token = 'fcm-token-f3-0000';
UPDATE push.devices SET invalidated_at = now() - interval '30 hours',
  invalid_reason = 'fcm:UNREGISTERED' WHERE token = 'fcm-token-f2-0000';
" >/dev/null || { echo "Bail out! seeding failed"; exit 1; }
is "$(q "$db" "SELECT count(*) FROM push.queue")" 7 "seeded: 7 queue rows"

# --- missing variables and unknown apps ---------------------------------
for s in ban_app unban_app pause_app resume_app requeue_failed app_health \
	cancel_campaign; do
	run "$s"
	ok $((rc == 0)) "$s without app exits non-zero ($rc)"
	like "$out" "$s\.sql: variable app is required" \
		"$s without app says app is required"
	run "$s" -v app=nope -v reason=x -v campaign=bf
	ok $((rc == 0)) "$s with an unknown app exits non-zero ($rc)"
	like "$out" 'pgpush: unknown app "nope"' "$s names the unknown app"
done
run purge_deliveries
ok $((rc == 0)) "purge_deliveries without days exits non-zero"
like "$out" "purge_deliveries\.sql: variable days is required" \
	"purge_deliveries without days says days is required"
run purge_deliveries -v days=0
ok $((rc == 0)) "purge_deliveries with days=0 exits non-zero"
like "$out" "days must be a whole number of days, 1 or more" \
	"and says what days must be"
run ban_app -v app=shop
ok $((rc == 0)) "ban_app without reason exits non-zero"
like "$out" "ban_app\.sql: variable reason is required" "and says so"
run ban_app -v app=shop -v reason=x -v duration='1 hour ago'
ok $((rc == 0)) "ban_app with a negative duration exits non-zero"
like "$out" "duration must be a positive interval" "and says so"
run cancel_campaign -v app=shop
ok $((rc == 0)) "cancel_campaign without campaign exits non-zero"
like "$out" "variable campaign is required" "and says so"
run cancel_campaign -v app=shop -v campaign=nope
ok $((rc == 0)) "cancel_campaign with an unknown campaign exits non-zero"
like "$out" "cancel_campaign\.sql: unknown campaign" "and says so"
run requeue_failed -v app=shop -v since='2 hours ago'
ok $((rc == 0)) "requeue_failed with since in the future exits non-zero"
like "$out" "since must be in the past" "and says so"
run pause_app -v app="x'; UPDATE push.apps SET paused = true; --"
like "$out" 'unknown app "x'"'"'; UPDATE push.apps' \
	"variables are quoted literals: SQL in a name is just an unknown app"
is "$(q "$db" "SELECT count(*) FROM push.queue") $(q "$db" \
	"SELECT count(*) FROM push.apps WHERE paused OR banned_until IS NOT NULL")" \
	"7 0" "the failed runs changed nothing"

# --- ban / unban ----------------------------------------------------------
run ban_app -v app=shop -v duration='2 hours' -v reason='bad key' -v by=alice
is "$rc" 0 "ban_app exits 0"
like "$out" "shop\|.*\|bad key\|alice" "ban_app prints the resulting row"
is "$(q "$db" "SELECT banned_until BETWEEN now() + interval '119 minutes'
	AND now() + interval '121 minutes', ban_reason, banned_by
	FROM push.apps WHERE name = 'shop'")" "t|bad key|alice" \
	"ban sets banned_until = now() + 2 hours, ban_reason, banned_by"
is "$(q "$db" "SELECT count(*) FROM push.apps WHERE banned_until IS NOT NULL")" \
	1 "only that app is banned"
run ban_app -v app=shop -v reason='again'
is "$(q "$db" "SELECT banned_until BETWEEN now() + interval '59 minutes'
	AND now() + interval '61 minutes', ban_reason, banned_by
	FROM push.apps WHERE name = 'shop'")" "t|again|$admin" \
	"a second ban replaces it: default 1 hour, banned_by current_user"
run unban_app -v app=shop
is "$rc" 0 "unban_app exits 0"
is "$(q "$db" "SELECT num_nulls(banned_until, ban_reason, banned_by)
	FROM push.apps WHERE name = 'shop'")" 3 "unban clears all three columns"

# --- pause / resume -------------------------------------------------------
run pause_app -v app=shop
is "$(q "$db" "SELECT paused FROM push.apps WHERE name = 'shop'")" t \
	"pause_app sets paused"
like "$out" "shop\|t\|\|7" "and prints the row with the queue depth"
is "$(q "$db" "SELECT paused FROM push.apps WHERE name = 'games'")" f \
	"and only for that app"
run resume_app -v app=shop
is "$(q "$db" "SELECT paused FROM push.apps WHERE name = 'shop'")" f \
	"resume_app clears paused"

# --- app_health -----------------------------------------------------------
run app_health -v app=shop -t
is "$rc" 0 "app_health exits 0"
section() { printf '%s\n' "$out" | sed -n "/^== $1/,/^==/p" | grep -v '^=='; }
like "$(section state)" "^[0-9]+\|shop\|standard\|t\|f\|f\|\|\|$" \
	"state: enabled, not paused, not banned"
is "$(section devices)" "apns|2|2
fcm|1|2" "devices per platform: active and invalidated"
is "$(section deliveries)" "apns|sent|1
apns|failed|6
fcm|sent|1
fcm|failed|2" "deliveries last 24 hours by platform and outcome"
is "$(section 'top failure')" "failed|BadTopic|6
failed|INVALID_ARGUMENT|2" "top failure reasons, most frequent first"
is "$(section invalidations)" "apns:Unregistered|2
fcm:UNREGISTERED|1" "invalidations last 24 hours by reason"
like "$(section queue)" "^apns\|4\|4\|1\|00:1[01]:[0-9][0-9]
fcm\|3\|3\|0\|00:00:[0-9][0-9]$" \
	"queue per platform: depth, due, leased, oldest age"
analyst_out=$(psql -X -q -A -t -U "$analyst" -d "$db" -v app=shop \
	-f "$PGPUSH_TOP/admin-sql/app_health.sql" 2>&1)
noage() { printf '%s\n' "$1" | sed 's/|[0-9:]*$/|AGE/'; }
is "$(noage "$analyst_out")" "$(noage "$out")" "an analyst role (no token or credential access) gets the same report"

# --- cancel_campaign ------------------------------------------------------
run cancel_campaign -v app=shop -v campaign=bf
is "$rc" 0 "cancel_campaign exits 0"
like "$out" "\|bf\|running\|cancelled\|3\|1" \
	"prints previous state, 3 cancelled, 1 left in flight"
is "$(q "$db" "SELECT state FROM push.campaigns WHERE name = 'bf'")" \
	cancelled "the campaign is cancelled"
is "$(q "$db" "SELECT string_agg(p.collapse_key, ',' ORDER BY p.collapse_key)
	FROM push.queue q JOIN push.pushes p ON p.id = q.push_id
	WHERE p.campaign_id IS NOT NULL")" C3 \
	"its unleased queue rows (and the lapsed lease) are gone; the leased one stays"
is "$(q "$db" "SELECT string_agg(p.collapse_key || ':' || d.platform || ':'
	|| d.attempt || ':' || (d.queue_id IS NOT NULL) || ':'
	|| (d.campaign_id IS NOT NULL), ',' ORDER BY p.collapse_key)
	FROM push.deliveries d JOIN push.pushes p ON p.id = d.push_id
	WHERE d.outcome = 'cancelled'")" \
	"C1:apns:0:true:true,C2:fcm:0:true:true,C4:apns:0:true:true" \
	"each is recorded as a cancelled delivery"
is "$(q "$db" "SELECT cancelled FROM push.campaign_funnel WHERE name = 'bf'")" 3 \
	"the campaign funnel counts the 3 cancelled"
run cancel_campaign -v app=shop -v campaign=bf
like "$out" "\|bf\|cancelled\|cancelled\|0\|1" "running it again cancels nothing more"
is "$(q "$db" "SELECT sum(count) FROM push.stats_all WHERE outcome = 'cancelled'")" 3 \
	"  and the stats count nothing twice"

# --- requeue_failed -------------------------------------------------------
queued() {
	q "$db" "SELECT string_agg(p.collapse_key || ':' || q.platform || ':'
	  || coalesce(q.device_id::text, '-') || ':'
	  || left(coalesce(q.token, (SELECT d.token FROM push.devices d
	                             WHERE d.id = q.device_id)), 12) || ':'
	  || q.attempts || ':' || (q.not_before > now() - interval '1 minute'),
	  ',' ORDER BY p.collapse_key, q.platform)
	FROM push.queue q JOIN push.pushes p ON p.id = q.push_id
	WHERE q.id > $mark"
}
mark=$(q "$db" "SELECT max(id) FROM push.queue")
listen_out=$(psql -X -q -d "$db" -c "LISTEN pgpush_enqueue" \
	-c "\\! psql -X -q -A -U $admin -d $db -v app=shop \
	      -f $PGPUSH_TOP/admin-sql/requeue_failed.sql > $tmpd/requeue.out 2>&1" \
	-c "SELECT 1" 2>&1)
out=$(cat "$tmpd/requeue.out")
like "$out" "^shop\|[0-9-]+ [0-9:.+-]+\|3$" "requeue_failed prints app, since and 3"
a1=$(q "$db" "SELECT id FROM push.devices WHERE token = repeat('a1', 32)")
is "$(queued)" "P1:apns:$a1:a1a1a1a1a1a1:0:true,P4:fcm:-:fcm-token-un:0:true,P7:apns:$a1:a1a1a1a1a1a1:0:true" \
	"it queues exactly the latest-failed ones (token of an unregistered target from the push)"
shop_id=$(q "$db" "SELECT push.app_id('shop')")
like "$listen_out" "notification \"pgpush_enqueue\" with payload \"$shop_id\"" \
	"and sends NOTIFY pgpush_enqueue with the app id"
run requeue_failed -v app=shop
like "$out" "\|0$" "a second run requeues nothing"
is "$(q "$db" "SELECT count(*) FROM push.queue")" 7 "queue: 3 left + 1 leased + 3 requeued"
since=$(q "$db" "SELECT (now() - interval '2 days')::text")
run requeue_failed -v app=shop -v since="$since"
like "$out" "\|1$" "since as a timestamp 2 days ago adds P5"
run requeue_failed -v app=shop -v since='2 days'
like "$out" "\|0$" "since as an interval: nothing more"
f1=$(q "$db" "SELECT id FROM push.devices WHERE token = 'fcm-token-f1-0000'")
like "$(queued)" "P5:fcm:$f1:fcm-token-f1:0:true" "P5 is queued for f1"
is "$(q "$db" "SELECT count(*) FROM push.queue WHERE app_id = push.app_id('games')")" \
	0 "the other app's failure is untouched"

# Concurrent runs queue each failure once. Take the requeued rows out again;
# a blocker holds push.queue until four runs are all waiting (on its lock or
# on each other), so without serialisation they would all insert at once.
q "$db" "DELETE FROM push.queue WHERE id > $mark" >/dev/null
psql -X -q -d "$db" >/dev/null 2>&1 <<'SQL' &
BEGIN;
LOCK TABLE push.queue IN SHARE MODE;
DO $$ BEGIN
  FOR i IN 1 .. 200 LOOP
    PERFORM pg_stat_clear_snapshot();
    EXIT WHEN (SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database()
                 AND wait_event_type = 'Lock') >= 4;
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
COMMIT;
SQL
for i in $(seq 100); do
	[ "$(q "$db" "SELECT count(*) FROM pg_locks WHERE granted
		AND relation = 'push.queue'::regclass AND mode = 'ShareLock'")" = 1 ] &&
		break
	sleep 0.05
done
for i in 1 2 3 4; do
	psql -X -q -A -t -U "$admin" -d "$db" -v app=shop -v since='2 days' \
		-f "$PGPUSH_TOP/admin-sql/requeue_failed.sql" >"$tmpd/race$i" 2>&1 &
done
wait   # the four runs and the blocker
is "$(cat "$tmpd"/race[1-4] | sed 's/.*|//' | sort -n | tr '\n' ' ')" \
	"0 0 0 4 " "four concurrent runs: one requeues 4, the others none"
is "$(q "$db" "SELECT count(*) FROM (SELECT push_id, device_id
	FROM push.queue GROUP BY 1, 2 HAVING count(*) > 1) s")" 0 \
	"no (push, device) is queued twice"

# --- purge_deliveries -----------------------------------------------------
q "$db" "
DO \$\$
DECLARE d date;
BEGIN
  FOREACH d IN ARRAY ARRAY[current_date - 40, current_date - 35,
                           current_date - 5] LOOP
    EXECUTE format('CREATE TABLE push.%I PARTITION OF push.deliveries
      FOR VALUES FROM (%L) TO (%L)', 'deliveries_' || to_char(d, 'YYYYMMDD'),
      d::text || ' 00:00 UTC', (d + 1)::text || ' 00:00 UTC');
  END LOOP;
END \$\$;
INSERT INTO push.deliveries (finished_at, push_id, app_id, outcome)
VALUES (now() - interval '40 days', 1, push.app_id('games'), 'sent'),
       (now() - interval '5 days', 1, push.app_id('games'), 'sent');" >/dev/null
before=$(q "$db" "SELECT count(*) FROM push.deliveries")
# Days of today and the next three without a partition yet (the migration
# made them, unless the day changed since).
missing=$(q "$db" "SELECT count(*) FROM generate_series(0, 3) n
  WHERE to_regclass('push.deliveries_' ||
    to_char((now() AT TIME ZONE 'UTC')::date + n, 'YYYYMMDD')) IS NULL")
run purge_deliveries -v days=30
is "$rc" 0 "purge_deliveries exits 0"
d40=$(q "$db" "SELECT to_char(current_date - 40, 'YYYYMMDD')")
d35=$(q "$db" "SELECT to_char(current_date - 35, 'YYYYMMDD')")
like "$out" "dropped\|push\.deliveries_$d40" "it reports the 40-day-old partition dropped"
like "$out" "dropped\|push\.deliveries_$d35" "and the 35-day-old one"
like "$out" "summary\|kept 30 days: 2 partitions dropped, $missing created" \
	"and a summary (created: the missing days of today and 3 ahead)"
is "$(q "$db" "SELECT string_agg(c.relname, ',' ORDER BY c.relname)
	FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
	WHERE i.inhparent = 'push.deliveries'::regclass
	  AND c.relname < 'deliveries_' || to_char(current_date, 'YYYYMMDD')")" \
	"deliveries_$(q "$db" "SELECT to_char(current_date - 5, 'YYYYMMDD')")" \
	"old partitions are gone, the 5-day-old one stays"
is "$(q "$db" "SELECT count(*) FROM push.deliveries")" $((before - 1)) \
	"only the 40-day-old row went"
run purge_deliveries -v days=30
like "$out" "summary\|nothing to do" "a second run has nothing to do"
