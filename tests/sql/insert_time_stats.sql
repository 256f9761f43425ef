-- insert_time_stats.sql: outcomes decided at enqueue (migration 0004).
-- A campaign goes to users with a device, users without one and devices
-- already invalidated; the enqueue trigger finishes the unsendable pushes
-- (no_device, invalid_token) and counts them in push.stats_inbox. The
-- campaign funnel and the app stats views count them exactly before the
-- fold (through push.stats_all) and after it; push.fold_stats_inbox()
-- moves the counts into push.stats_minute without touching latency, a
-- second fold adds nothing, push.run_maintenance() folds before it rolls
-- up, and a statement of sendable pushes writes nothing to the inbox.
BEGIN;
SELECT plan(28);

SET LOCAL TimeZone = 'UTC';

-- A histogram with n latencies in the bucket of upper bound `ms`.
CREATE FUNCTION pg_temp.hist(ms double precision, n bigint) RETURNS bigint[]
LANGUAGE sql AS $$
  SELECT array_agg(CASE WHEN b = ms THEN n ELSE 0 END ORDER BY i)
  FROM unnest(push.latency_bounds_ms() || 'Infinity'::float8)
       WITH ORDINALITY AS x(b, i)
$$;

INSERT INTO push.apps (name) VALUES ('its_shop');
INSERT INTO push.campaigns (app_id, name, payload_template, state)
VALUES (push.app_id('its_shop'), 'its_spring', '{"title": "hi"}', 'running');
CREATE TEMP TABLE t AS
SELECT push.app_id('its_shop') AS a,
       (SELECT id FROM push.campaigns WHERE name = 'its_spring') AS c;

-- Users u1..u6: one active FCM device each. u9, u10: one FCM device each,
-- already invalidated (pushed by device id: invalid_token). u11: only an
-- invalidated device (pushed by user id: no_device). u7, u8: no device.
INSERT INTO push.devices (app_id, platform, token, user_id, invalidated_at,
                          invalid_reason)
SELECT t.a, 'fcm', 'its-device-token-' || lpad(i::text, 4, '0'), 'u' || i,
       CASE WHEN i >= 9 THEN now() - interval '1 day' END,
       CASE WHEN i >= 9 THEN 'fcm:UNREGISTERED' END
FROM t, generate_series(1, 11) i
WHERE i NOT IN (7, 8);
INSERT INTO push.campaign_targets (campaign_id, user_id, enqueued_at)
SELECT t.c, 'u' || i, now() FROM t, generate_series(1, 11) i;

-- The campaign, in one statement: 6 queued, 2 invalid_token, 3 no_device.
INSERT INTO push.pushes (app_id, user_id, device_id, payload, campaign_id)
SELECT t.a, CASE WHEN ct.user_id IN ('u9', 'u10') THEN NULL
                 ELSE ct.user_id END,
       CASE WHEN ct.user_id IN ('u9', 'u10') THEN d.id END,
       '{"title": "hi"}', t.c
FROM t JOIN push.campaign_targets ct ON ct.campaign_id = t.c
LEFT JOIN push.devices d ON d.app_id = t.a AND d.user_id = ct.user_id;
-- Outside the campaign: a user without devices, and a user with no WNS
-- device pushed on WNS.
INSERT INTO push.pushes (app_id, user_id, platform, payload)
SELECT t.a, 'u7', NULL::push.platform, '{"title": "solo"}'::jsonb FROM t
UNION ALL
SELECT t.a, 'u1', 'wns', '{"title": "solo"}' FROM t;

SELECT is((SELECT count(*) FROM push.queue q JOIN t ON q.app_id = t.a),
          6::bigint, 'six campaign pushes are queued');
SELECT is((SELECT string_agg(outcome || ':' || coalesce(platform::text, '-')
                             || ':' || (campaign_id IS NOT NULL) || '=' || n,
                             ' ' ORDER BY outcome, platform, campaign_id)
           FROM (SELECT outcome, platform, campaign_id, count(*) n
                 FROM push.deliveries d JOIN t ON d.app_id = t.a
                 GROUP BY 1, 2, 3) x),
          'invalid_token:fcm:true=2 no_device:wns:false=1 '
          'no_device:-:true=3 no_device:-:false=1',
          'the trigger finished 7 pushes in push.deliveries');
SELECT is((SELECT string_agg(outcome || ':' || coalesce(platform::text, '-')
                             || ':' || (campaign_id IS NOT NULL) || '=' || n,
                             ' ' ORDER BY outcome, platform, campaign_id)
           FROM (SELECT outcome, platform, campaign_id, sum(count) n
                 FROM push.stats_inbox i JOIN t ON i.app_id = t.a
                 GROUP BY 1, 2, 3) x),
          'invalid_token:fcm:true=2 no_device:wns:false=1 '
          'no_device:-:true=3 no_device:-:false=1',
          '... and counted each in push.stats_inbox, by the same keys');
SELECT is((SELECT count(DISTINCT minute) || ' ' ||
                  bool_and(minute = date_trunc('minute', now(), 'UTC'))
           FROM push.stats_inbox i JOIN t ON i.app_id = t.a),
          '1 true', '... at the minute the outcome was recorded');
SELECT is((SELECT count(*) FROM push.stats_minute s JOIN t ON s.app_id = t.a),
          0::bigint, 'push.stats_minute is untouched by the enqueue');

-- The dispatcher's part: of the 6 queued, 5 sent (<= 20 ms) and 1
-- invalid_token (<= 10 ms), merged as pgpushd does. The invalid_token row
-- has the same key as the insert-time ones.
INSERT INTO push.stats_minute (minute, app_id, platform, campaign_id, outcome,
  count, attempts, bytes_sent, latency_ms_sum, latency_ms_min,
  latency_ms_max, latency_hist)
SELECT date_trunc('minute', now(), 'UTC'), t.a, 'fcm'::push.platform, t.c,
       'sent'::push.outcome, 5, 5, 500, 75, 12, 18, pg_temp.hist(20, 5) FROM t
UNION ALL
SELECT date_trunc('minute', now(), 'UTC'), t.a, 'fcm', t.c, 'invalid_token',
       1, 1, 100, 10, 10, 10, pg_temp.hist(10, 1) FROM t;

-- Before the fold: the views read the inbox through push.stats_all.
CREATE FUNCTION pg_temp.funnel() RETURNS text LANGUAGE sql AS $$
  SELECT row(targets, queued, sent, failed, invalidated, expired, dropped,
             no_device, latency_ms_p50)::text
  FROM push.campaign_funnel WHERE name = 'its_spring'
$$;
CREATE FUNCTION pg_temp.funnel_adds_up() RETURNS boolean LANGUAGE sql AS $$
  SELECT targets = sent + failed + invalidated + expired + dropped + no_device
  FROM push.campaign_funnel WHERE name = 'its_spring'
$$;
CREATE FUNCTION pg_temp.app_view() RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(coalesce(platform::text, '-') || ':' ||
                    row(total, sent, invalid_token, no_device, attempts,
                        bytes_sent, latency_ms_avg, latency_ms_p50)::text,
                    ' ' ORDER BY platform NULLS FIRST)
  FROM push.app_stats_hourly s JOIN t ON s.app_id = t.a
$$;
SELECT is(pg_temp.funnel(), '(11,11,5,0,3,0,0,3,20)',
          'campaign_funnel before the fold: 11 targets = 5 sent + 3 '
          'invalidated + 3 no_device');
SELECT ok(pg_temp.funnel_adds_up(),
          '... targets equal the sum of the outcomes');
SELECT is(pg_temp.app_view(),
          '-:(4,0,0,4,0,0,,) fcm:(8,5,3,0,6,600,14.166666666666666,20) '
          'wns:(1,0,0,1,0,0,,)',
          'app_stats_hourly before the fold: invalid_token and no_device '
          'exact (NULL platform for user targets without one); latency '
          'from the sent pushes only');
SELECT is((SELECT row(sum(invalid_token), sum(no_device))::text
           FROM push.app_stats_daily s JOIN t ON s.app_id = t.a),
          '(3,5)', 'app_stats_daily: the same counts');
SELECT is((SELECT failed_by_reason FROM push.app_stats_hourly s JOIN t
           ON s.app_id = t.a WHERE platform = 'fcm'),
          '{"device invalidated before enqueue": 2}'::jsonb,
          'failed_by_reason: one key for the pushes finished at enqueue');
SELECT is((SELECT row(count, latency_ms_avg, latency_ms_p50)::text
           FROM push.stats_hourly s JOIN t ON s.app_id = t.a
           WHERE platform = 'fcm' AND outcome = 'invalid_token'),
          '(3,10,10)',
          'stats_hourly: 3 invalid tokens, latency of the one sent (10 ms)');
CREATE TEMP TABLE before_fold AS
SELECT 'app' AS v, to_jsonb(s) AS r FROM push.app_stats_hourly s, t
WHERE s.app_id = t.a
UNION ALL
SELECT 'funnel', to_jsonb(f) FROM push.campaign_funnel f, t
WHERE f.campaign_id = t.c
UNION ALL
SELECT 'hourly', to_jsonb(h) FROM push.stats_hourly h, t WHERE h.app_id = t.a;

-- The fold.
SELECT is(push.fold_stats_inbox(), 7::bigint,
          'fold_stats_inbox moves the 7 insert-time outcomes');
SELECT is((SELECT count(*) FROM push.stats_inbox), 0::bigint,
          '... and empties push.stats_inbox');
SELECT is((SELECT row(count, attempts, bytes_sent, latency_ms_sum,
                      latency_ms_min, latency_ms_max,
                      latency_hist = pg_temp.hist(10, 1))::text
           FROM push.stats_minute s, t
           WHERE s.app_id = t.a AND s.campaign_id = t.c
             AND outcome = 'invalid_token'),
          '(3,1,100,10,10,10,t)',
          '... merging into the dispatcher''s row: count 1 + 2, requests, '
          'bytes and latency (histogram too) unchanged');
SELECT is((SELECT string_agg(coalesce(platform::text, '-') || ':' ||
                             (campaign_id IS NOT NULL) || '=' || count || '/'
                             || attempts || '/' || cardinality(latency_hist)
                             || '/' || coalesce(latency_ms_min::text, '-'),
                             ' ' ORDER BY platform NULLS FIRST, campaign_id)
           FROM push.stats_minute s JOIN t ON s.app_id = t.a
           WHERE outcome = 'no_device'),
          '-:true=3/0/0/- -:false=1/0/0/- wns:false=1/0/0/-',
          '... and adding no_device rows with counts only');
SELECT set_eq($$
  SELECT 'app' AS v, to_jsonb(s) AS r FROM push.app_stats_hourly s, t
  WHERE s.app_id = t.a
  UNION ALL
  SELECT 'funnel', to_jsonb(f) FROM push.campaign_funnel f, t
  WHERE f.campaign_id = t.c
  UNION ALL
  SELECT 'hourly', to_jsonb(h) FROM push.stats_hourly h, t
  WHERE h.app_id = t.a$$,
  'SELECT v, r FROM before_fold',
  'app_stats_hourly, campaign_funnel and stats_hourly are the same after '
  'the fold');
SELECT ok(pg_temp.funnel_adds_up(),
          'the funnel still adds up after the fold');
SELECT is((SELECT sum(count) FROM push.stats_all s JOIN t ON s.app_id = t.a
           WHERE outcome IN ('no_device', 'invalid_token')),
          (SELECT count(*)::numeric FROM push.deliveries d JOIN t
             ON d.app_id = t.a) + 1,
          'stats totals equal the deliveries (7) plus the dispatcher''s '
          'invalid_token (not written to push.deliveries here)');

-- Idempotent.
SELECT is(push.fold_stats_inbox(), 0::bigint, 'a second fold moves nothing');
SELECT set_eq($$
  SELECT 'app' AS v, to_jsonb(s) AS r FROM push.app_stats_hourly s, t
  WHERE s.app_id = t.a
  UNION ALL
  SELECT 'funnel', to_jsonb(f) FROM push.campaign_funnel f, t
  WHERE f.campaign_id = t.c
  UNION ALL
  SELECT 'hourly', to_jsonb(h) FROM push.stats_hourly h, t
  WHERE h.app_id = t.a$$,
  'SELECT v, r FROM before_fold', '... and changes no view');

-- Sendable pushes write nothing to the inbox.
INSERT INTO push.pushes (app_id, user_id, payload)
SELECT t.a, 'u' || i, '{"title": "all sendable"}'
FROM t, generate_series(1, 6) i;
SELECT is((SELECT count(*) FROM push.stats_inbox), 0::bigint,
          'a statement whose pushes are all sendable adds no inbox row');
SELECT is((SELECT count(*) FROM push.deliveries d JOIN t ON d.app_id = t.a),
          7::bigint, '... nor a delivery');

-- run_maintenance folds (and says so), then rolls up: an insert-time
-- outcome of a minute already due for rollup ends in push.stats_hour.
INSERT INTO push.pushes (app_id, user_id, payload)
SELECT t.a, 'u8', '{"title": "late"}' FROM t;
INSERT INTO push.stats_inbox (minute, app_id, platform, campaign_id, outcome,
                              count)
SELECT date_trunc('minute', now(), 'UTC') - interval '3 days', t.a, 'fcm',
       NULL, 'invalid_token', 2 FROM t;
CREATE TEMP TABLE maint AS SELECT * FROM push.run_maintenance();
SELECT is((SELECT string_agg(object, ',') FROM maint
           WHERE action = 'folded'),
          '3 insert-time outcomes into push.stats_minute',
          'run_maintenance reports the fold');
SELECT is((SELECT count(*) FROM push.stats_inbox), 0::bigint,
          '... the inbox is empty');
SELECT is((SELECT row(h.count, h.hour)::text FROM push.stats_hour h, t
           WHERE h.app_id = t.a AND h.outcome = 'invalid_token'),
          (SELECT row(2, date_trunc('hour', now() - interval '3 days'))::text),
          '... and the 3-day-old counts were rolled up into their hour');
SELECT is((SELECT count(*) FROM push.stats_minute s, t
           WHERE s.app_id = t.a AND s.minute < now() - interval '1 day'),
          0::bigint, '... leaving no old minute behind');
SELECT is((SELECT sum(no_device) FROM push.app_stats_daily s JOIN t
             ON s.app_id = t.a),
          6::numeric, 'the late no_device push is counted (5 + 1)');
SELECT ok(NOT EXISTS (SELECT 1 FROM maint WHERE action = 'skipped'),
          'run_maintenance did its work');

SELECT * FROM finish();
ROLLBACK;
