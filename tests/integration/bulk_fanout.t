#!/usr/bin/env bash
# bulk_fanout.t - one INSERT ... SELECT of 100,000 user-targeted pushes fans
# out over 3 devices each into 300,000 queue rows, in one statement, with
# one NOTIFY; a bad row anywhere in such a batch enqueues nothing.
. "$(dirname "$0")/../harness/lib.sh"
plan 5

fresh_db bulk
q bulk "
  INSERT INTO push.apps (name) VALUES ('bulk');
  INSERT INTO push.devices (app_id, platform, token, user_id)
    SELECT push.app_id('bulk'), 'fcm',
           'fcm-token-' || lpad(i::text, 9, '0'), 'user' || (i % 100000)
    FROM generate_series(0, 299999) i;
  ANALYZE push.devices;" >/dev/null

start=$(date +%s.%N)
q bulk "INSERT INTO push.pushes (app_id, user_id, payload)
        SELECT push.app_id('bulk'), 'user' || i,
               jsonb_build_object('title', 'Hello', 'body', 'user ' || i)
        FROM generate_series(0, 99999) i" >/dev/null
ok $? "100,000 user-targeted pushes enqueue in one statement"
diag "took $(echo "$(date +%s.%N) - $start" | bc 2>/dev/null || echo '?') s"
is "$(q bulk 'SELECT count(*) FROM push.queue')" 300000 \
	"they fan out to 300,000 queue rows"
is "$(q bulk 'SELECT count(DISTINCT (push_id, device_id)) FROM push.queue')" \
	300000 "one row per (push, device), no duplicates"

err=$(q_err bulk "INSERT INTO push.pushes (app_id, user_id, payload)
        SELECT push.app_id('bulk'), 'user' || i,
               CASE WHEN i = 99999 THEN '[]'::jsonb
                    ELSE '{\"title\":\"x\"}'::jsonb END
        FROM generate_series(0, 99999) i")
like "$err" "push rejected: payload must be a JSON object" \
	"a batch whose last row is bad is rejected with the reason"
is "$(q bulk 'SELECT count(*) FROM push.queue')" 300000 \
	"and enqueues nothing"
