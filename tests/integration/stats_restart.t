#!/usr/bin/env bash
# stats_restart.t - statistics survive a restart of a daemon mid-run
# and two daemons share the work: 3,000 pushes against a fake FCM with
# latency; daemons A and B both appear live in push.dispatcher_health; A is
# stopped (SIGTERM) and started again mid-run; at the end the totals of
# push.stats_minute (and the views) still equal push.deliveries, by
# outcome and by app. Then B is killed with SIGKILL: push.dispatcher_health
# shows it dead within 3 heartbeats (and not before the first is missed).
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"

DB=stats_restart
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start
ctl POST /latency '{"distribution":"uniform","min_ms":5,"max_ms":40}' >/dev/null

A1=$(fcm_app $DB restart-a ", max_concurrency" ", 8")
A2=$(fcm_app $DB restart-b ", max_concurrency" ", 8")

daemon_start $DB
PID_A=$DAEMON_PID LOG_A=$DAEMON_LOG
daemon_start $DB --heartbeat-interval-ms 300
PID_B=$DAEMON_PID LOG_B=$DAEMON_LOG
wait_for $DB "SELECT count(*) = 2 AND bool_and(live)
              FROM push.dispatcher_health
              WHERE pid IN ($PID_A, $PID_B)" 10
ok $? "both daemons appear live in push.dispatcher_health"
is "$(q $DB "SELECT count(DISTINCT host) || ' ' || count(*)
             FROM push.dispatchers WHERE state = 'running'")" "1 2" \
   "  two rows in push.dispatchers"

q $DB "
  INSERT INTO push.pushes (app_id, platform, token, payload)
  SELECT CASE WHEN i % 3 = 0 THEN $A2 ELSE $A1 END, 'fcm',
         'restart-token-' || lpad(i::text, 6, '0'),
         jsonb_build_object('title', 'n' || i)
  FROM generate_series(1, 3000) i;" >/dev/null

# Restart A once some work is done.
wait_for $DB "SELECT count(*) >= 600 FROM push.deliveries" 60
ok $? "work under way"
DAEMON_PID=$PID_A DAEMON_LOG=$LOG_A
daemon_stop
ID_A=$(q $DB "SELECT id FROM push.dispatchers WHERE pid = $PID_A")
is "$(q $DB "SELECT status FROM push.dispatcher_health WHERE id = '$ID_A'")" \
   stopped "A shows stopped after SIGTERM"
done_mid=$(q $DB "SELECT count(*) FROM push.deliveries")
ok "$([ "$done_mid" -lt 3000 ] && echo 0 || echo 1)" \
   "A stopped mid-run ($done_mid of 3000 done)"
daemon_start $DB
PID_A2=$DAEMON_PID LOG_A2=$DAEMON_LOG

wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)
  AND (SELECT count(*) FROM push.deliveries WHERE outcome <> 'retry') >= 3000
  AND (SELECT sum(count) FROM push.stats_minute) =
      (SELECT count(*) FROM push.deliveries)" 90
ok $? "all 3000 done and the stats caught up"
is "$(q $DB "SELECT count(*) FROM push.deliveries WHERE outcome = 'sent'")" \
   3000 "3000 sent"
is "$(q $DB "SELECT count(DISTINCT dispatcher) FROM push.deliveries")" 3 \
   "three processes recorded deliveries (A, B, A again)"
is "$(q $DB "SELECT string_agg(app_id || ':' || outcome || ':' || n, ' '
                               ORDER BY app_id, outcome)
             FROM (SELECT app_id, outcome, sum(count) n FROM push.stats_all
                   GROUP BY 1, 2) x")" \
   "$(q $DB "SELECT string_agg(app_id || ':' || outcome || ':' || n, ' '
                               ORDER BY app_id, outcome)
             FROM (SELECT app_id, outcome, count(*) n FROM push.deliveries
                   GROUP BY 1, 2) x")" \
   "stats totals by app and outcome equal the deliveries across the restart"
is "$(q $DB "SELECT sum(sent) FROM push.app_stats_daily")" 3000 \
   "app_stats_daily: 3000 sent"
is "$(q $DB "SELECT sum(attempts) FROM push.stats_all")" \
   "$(q $DB "SELECT count(*) FROM push.deliveries WHERE sent_at IS NOT NULL")" \
   "attempts equal the requests sent"
is "$(q $DB "SELECT sum(count) FROM push.stats_all
             WHERE latency_ms_min IS NOT NULL")" \
   "$(q $DB "SELECT count(*) FROM push.deliveries WHERE latency_ms IS NOT NULL")" \
   "every latency is in the histograms"

# Kill B: dead within 3 heartbeats (300 ms each), not before one is missed.
ID_B=$(q $DB "SELECT id FROM push.dispatchers WHERE pid = $PID_B")
kill -KILL "$PID_B"
wait "$PID_B" 2>/dev/null
t0=$(now_ms)
is "$(q $DB "SELECT status FROM push.dispatcher_health WHERE id = '$ID_B'")" \
   running "B still shows running right after SIGKILL (no heartbeat missed)"
wait_for $DB "SELECT status = 'dead' AND NOT live FROM push.dispatcher_health
              WHERE id = '$ID_B'" 5
ok $? "B shows dead"
dt=$(( $(now_ms) - t0 ))
ok "$([ "$dt" -le 1500 ] && echo 0 || echo 1)" \
   "  within 3 heartbeats and a poll ($dt ms after the kill; 900 ms + slack)"
is "$(q $DB "SELECT status || ' ' || live FROM push.dispatcher_health
             WHERE pid = $PID_A2")" "running true" \
   "  while the restarted A is still live"

# Maintenance is one session at a time: while another session holds the
# lock, push.run_maintenance() skips at once instead of waiting.
psql -X -q -d $DB -c "SELECT pg_advisory_lock(hashtext('pgpush.run_maintenance')),
                             pg_sleep(3)" >/dev/null 2>&1 &
holder=$!
wait_for $DB "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
              AND granted AND pid <> pg_backend_pid())" 5
t0=$(now_ms)
is "$(q $DB "SELECT string_agg(action, ',') FROM push.run_maintenance()")" \
   skipped "run_maintenance skips while another session maintains"
ok "$([ $(( $(now_ms) - t0 )) -lt 2000 ] && echo 0 || echo 1)" "  at once"
wait "$holder"

DAEMON_PID=$PID_A2 DAEMON_LOG=$LOG_A2
daemon_stop
fake_stop
done_testing
