-- fanout.sql: how push.pushes rows become push.queue rows (one per device)
-- or push.deliveries rows (pushes that cannot be sent at all).
BEGIN;
SELECT plan(32);

INSERT INTO push.apps (name) VALUES ('fo_shop'), ('fo_other');

-- alice: three active devices and one invalidated one. The invalidated one
-- was seen most recently, and the newest active one has neither the
-- largest nor the smallest id, so "newest" must mean last_seen_at.
DO $$ BEGIN PERFORM push.register_device(push.app_id('fo_shop'), 'apns', repeat('a1', 32),
                            'alice'); END $$;
DO $$ BEGIN PERFORM push.register_device(push.app_id('fo_shop'), 'fcm', 'fo-alice-fcm-0001',
                            'alice'); END $$;
DO $$ BEGIN PERFORM push.register_device(push.app_id('fo_shop'), 'fcm', 'fo-alice-fcm-0002',
                            'alice'); END $$;
DO $$ BEGIN PERFORM push.register_device(push.app_id('fo_shop'), 'apns', repeat('a4', 32),
                            'alice'); END $$;
UPDATE push.devices SET last_seen_at = now() - interval '3 hours'
 WHERE token = repeat('a1', 32);
UPDATE push.devices SET last_seen_at = now() - interval '1 hour'
 WHERE token = 'fo-alice-fcm-0001';
UPDATE push.devices SET last_seen_at = now() - interval '2 hours'
 WHERE token = 'fo-alice-fcm-0002';
UPDATE push.devices SET invalidated_at = now(),
       invalid_reason = 'apns:Unregistered'
 WHERE token = repeat('a4', 32);
-- alice of another app is another person.
DO $$ BEGIN PERFORM push.register_device(push.app_id('fo_other'), 'fcm',
                            'fo-other-alice-0001', 'alice'); END $$;
-- carol: only an invalidated device.
DO $$ BEGIN PERFORM push.register_device(push.app_id('fo_shop'), 'fcm', 'fo-carol-fcm-0001',
                            'carol'); END $$;
UPDATE push.devices SET invalidated_at = now(), invalid_reason = 'fcm:UNREGISTERED'
 WHERE token = 'fo-carol-fcm-0001';

-- The tokens a push (found by its payload title) was queued to.
CREATE FUNCTION pg_temp.queued(p_title text) RETURNS SETOF text
LANGUAGE sql AS $$
  -- a device's row names the device; its token is read when claimed
  SELECT coalesce(q.token, (SELECT d.token FROM push.devices d
                            WHERE d.id = q.device_id))
  FROM push.queue q JOIN push.pushes p ON p.id = q.push_id
  WHERE p.payload ->> 'title' = p_title
$$;
CREATE FUNCTION pg_temp.delivery(p_title text) RETURNS SETOF push.deliveries
LANGUAGE sql AS $$
  SELECT d.* FROM push.deliveries d JOIN push.pushes p ON p.id = d.push_id
  WHERE p.payload ->> 'title' = p_title
$$;

-- User targets -------------------------------------------------------------
INSERT INTO push.pushes (app_id, user_id, payload)
VALUES (push.app_id('fo_shop'), 'alice', '{"title": "all"}');
SELECT set_eq($$SELECT * FROM pg_temp.queued('all')$$,
  ARRAY[repeat('a1', 32), 'fo-alice-fcm-0001', 'fo-alice-fcm-0002'],
  'a user target is queued once to each active device of the user in '
  'that app, not to the invalidated one');
SELECT is((SELECT count(*)::int FROM pg_temp.delivery('all')), 0,
          '... and records nothing in push.deliveries');
SELECT is((SELECT count(DISTINCT q.device_id)::int FROM push.queue q
           JOIN push.pushes p ON p.id = q.push_id
           WHERE p.payload ->> 'title' = 'all'), 3,
          '... each queue row naming its device');

INSERT INTO push.pushes (app_id, user_id, newest_device_only, payload)
VALUES (push.app_id('fo_shop'), 'alice', true, '{"title": "newest"}');
SELECT results_eq($$SELECT * FROM pg_temp.queued('newest')$$,
  ARRAY['fo-alice-fcm-0001'],
  'newest_device_only: one queue row, to the most recently seen active '
  'device');

INSERT INTO push.pushes (app_id, user_id, platform, payload)
VALUES (push.app_id('fo_shop'), 'alice', 'apns', '{"title": "apns only"}'),
       (push.app_id('fo_shop'), 'alice', 'fcm', '{"title": "fcm only"}'),
       (push.app_id('fo_shop'), 'alice', 'wns', '{"title": "wns only"}');
SELECT set_eq($$SELECT * FROM pg_temp.queued('apns only')$$,
  ARRAY[repeat('a1', 32)],
  'a user target with platform apns goes to the user''s APNs devices only');
SELECT set_eq($$SELECT * FROM pg_temp.queued('fcm only')$$,
  ARRAY['fo-alice-fcm-0001', 'fo-alice-fcm-0002'],
  'a user target with platform fcm goes to the user''s FCM devices only');
SELECT is((SELECT count(*)::int FROM pg_temp.queued('wns only')), 0,
  'a user target with a platform the user has no device on queues nothing');
SELECT is((SELECT outcome::text FROM pg_temp.delivery('wns only')),
  'no_device', '... and is recorded as no_device');

INSERT INTO push.pushes (app_id, user_id, platform, newest_device_only,
                         payload)
VALUES (push.app_id('fo_shop'), 'alice', 'apns', true,
        '{"title": "newest apns"}');
SELECT results_eq($$SELECT * FROM pg_temp.queued('newest apns')$$,
  ARRAY[repeat('a1', 32)],
  'platform + newest_device_only: the newest device on that platform');

-- Users without an active device ---------------------------------------------
INSERT INTO push.pushes (app_id, user_id, payload)
VALUES (push.app_id('fo_shop'), 'nobody', '{"title": "nobody"}'),
       (push.app_id('fo_shop'), 'carol', '{"title": "carol"}');
SELECT is((SELECT count(*)::int FROM pg_temp.queued('nobody')), 0,
          'a user with no devices gets no queue row');
SELECT results_eq($$
  SELECT d.outcome::text, d.app_id, d.platform, d.device_id, d.provider_reason,
         d.attempt, d.enqueued_at = p.created_at
  FROM pg_temp.delivery('nobody') d JOIN push.pushes p ON p.id = d.push_id$$,
  $$VALUES ('no_device', push.app_id('fo_shop'), NULL::push.platform,
            NULL::bigint, 'the user has no active device', 0, true)$$,
  '... but one push.deliveries row: no_device, with the reason');
SELECT is((SELECT count(*)::int FROM pg_temp.queued('carol')), 0,
          'a user whose only device is invalidated gets no queue row');
SELECT is((SELECT string_agg(outcome::text, ',') FROM pg_temp.delivery('carol')),
          'no_device', '... and one no_device delivery row');

-- Device targets -------------------------------------------------------------
INSERT INTO push.pushes (app_id, device_id, payload)
SELECT app_id, id, '{"title": "dead device"}' FROM push.devices
WHERE token = repeat('a4', 32);
SELECT is((SELECT count(*)::int FROM pg_temp.queued('dead device')), 0,
          'a device target whose device is invalidated gets no queue row');
SELECT results_eq($$
  SELECT d.outcome::text, d.platform::text, d.device_id
  FROM pg_temp.delivery('dead device') d$$,
  $$SELECT 'invalid_token', 'apns', id FROM push.devices
    WHERE token = repeat('a4', 32)$$,
  '... but one invalid_token delivery row for that device');
SELECT matches((SELECT provider_reason FROM pg_temp.delivery('dead device')),
  '^device invalidated at .+: apns:Unregistered$',
  '... whose reason says when and why the device was invalidated');

INSERT INTO push.pushes (app_id, device_id, payload)
SELECT app_id, id, '{"title": "live device"}' FROM push.devices
WHERE token = 'fo-alice-fcm-0002';
SELECT results_eq($$
  SELECT q.platform::text, q.token, q.device_id FROM push.queue q
  JOIN push.pushes p ON p.id = q.push_id
  WHERE p.payload ->> 'title' = 'live device'$$,
  $$SELECT 'fcm', NULL::text, id FROM push.devices
    WHERE token = 'fo-alice-fcm-0002'$$,
  'a device target is queued to that device, with its platform (the token '
  'stays in push.devices)');

-- Token targets ------------------------------------------------------------------
INSERT INTO push.pushes (app_id, platform, token, payload)
VALUES (push.app_id('fo_shop'), 'fcm', 'fo-unregistered-0001',
        '{"title": "unregistered"}'),
       (push.app_id('fo_shop'), 'fcm', 'fo-alice-fcm-0001',
        '{"title": "registered"}');
SELECT results_eq($$
  SELECT q.platform::text, q.token, q.device_id FROM push.queue q
  JOIN push.pushes p ON p.id = q.push_id
  WHERE p.payload ->> 'title' = 'unregistered'$$,
  $$VALUES ('fcm', 'fo-unregistered-0001', NULL::bigint)$$,
  'a token target for an unregistered token is queued with device_id NULL');
SELECT results_eq($$
  SELECT q.device_id FROM push.queue q
  JOIN push.pushes p ON p.id = q.push_id
  WHERE p.payload ->> 'title' = 'registered'$$,
  $$SELECT id FROM push.devices WHERE token = 'fo-alice-fcm-0001'$$,
  'a token target for a registered token is queued with its device_id');
INSERT INTO push.pushes (app_id, platform, token, payload)
VALUES (push.app_id('fo_shop'), 'fcm', 'fo-carol-fcm-0001',
        '{"title": "dead token"}');
SELECT is((SELECT count(*)::int FROM pg_temp.queued('dead token')), 0,
          'a token target whose registered device is invalidated is not queued');
SELECT is((SELECT outcome::text FROM pg_temp.delivery('dead token')),
          'invalid_token', '... and is recorded as invalid_token');

-- What a queue row carries -----------------------------------------------------
INSERT INTO push.pushes (app_id, device_id, payload, priority, send_after, ttl)
SELECT app_id, id, '{"title": "scheduled"}', 'high',
       '2030-01-01 12:00 UTC', 3600
FROM push.devices WHERE token = 'fo-alice-fcm-0001';
INSERT INTO push.pushes (app_id, device_id, payload, priority, expires_at)
SELECT app_id, id, '{"title": "asap"}', 'low', '2031-06-01 00:00 UTC'
FROM push.devices WHERE token = 'fo-alice-fcm-0001';
INSERT INTO push.pushes (app_id, device_id, payload)
SELECT app_id, id, '{"title": "defaults"}'
FROM push.devices WHERE token = 'fo-alice-fcm-0001';

CREATE TEMP VIEW qrow AS
SELECT p.payload ->> 'title' AS title, q.*, p.created_at AS p_created_at
FROM push.queue q JOIN push.pushes p ON p.id = q.push_id;

SELECT is((SELECT priority::text FROM qrow WHERE title = 'scheduled'), 'high',
          'the queue row carries the push''s priority (high)');
SELECT is((SELECT priority::text FROM qrow WHERE title = 'asap'), 'low',
          'the queue row carries the push''s priority (low)');
SELECT is((SELECT priority::text FROM qrow WHERE title = 'defaults'), 'normal',
          'priority defaults to normal');
SELECT is((SELECT not_before FROM qrow WHERE title = 'scheduled'),
          '2030-01-01 12:00 UTC'::timestamptz,
          'not_before is the push''s send_after');
SELECT ok((SELECT not_before = p_created_at AND enqueued_at = p_created_at
           FROM qrow WHERE title = 'asap'),
          'without send_after, not_before (and enqueued_at) is created_at');
SELECT ok((SELECT expires_at = p_created_at + interval '3600 seconds'
           FROM qrow WHERE title = 'scheduled'),
          'with a ttl, expires_at is created_at + ttl seconds');
SELECT is((SELECT expires_at FROM qrow WHERE title = 'asap'),
          '2031-06-01 00:00 UTC'::timestamptz,
          'with expires_at, the queue row expires then');
SELECT ok((SELECT expires_at IS NULL FROM qrow WHERE title = 'defaults'),
          'with neither, the queue row never expires');
SELECT ok((SELECT attempts = 0 AND lease_owner IS NULL
                  AND lease_expires_at IS NULL
           FROM qrow WHERE title = 'defaults'),
          'a new queue row has no attempts and no lease');

-- Bulk: 1,000 users x 3 devices in one INSERT ... SELECT -------------------------
INSERT INTO push.devices (app_id, platform, token, user_id)
SELECT push.app_id('fo_shop'), 'fcm', format('fo-bulk-token-%s-%s', u, n),
       'bulk-' || u
FROM generate_series(1, 1000) u, generate_series(1, 3) n;
INSERT INTO push.pushes (app_id, user_id, payload)
SELECT push.app_id('fo_shop'), 'bulk-' || u, '{"title": "bulk"}'
FROM generate_series(1, 1000) u;
SELECT is((SELECT count(*)::int FROM pg_temp.queued('bulk')), 3000,
          'a bulk INSERT ... SELECT of 1,000 user targets x 3 devices makes '
          '3,000 queue rows');
SELECT is((SELECT count(*)::int FROM (
             SELECT q.push_id FROM push.queue q
             JOIN push.pushes p ON p.id = q.push_id
             JOIN push.devices d ON d.id = q.device_id
             WHERE p.payload ->> 'title' = 'bulk'
             GROUP BY q.push_id HAVING count(*) = 3
               AND bool_and(d.token LIKE 'fo-bulk-token-' ||
                            substr(p.user_id, 6) || '-%')) x), 1000,
          '... three per push, each to that user''s own devices');

SELECT * FROM finish();
ROLLBACK;
