-- roles.sql: the boundaries schema/90_roles.sql draws, proven each way.
-- Login roles are created inside the transaction (CREATE ROLE is
-- transactional) and used with SET LOCAL ROLE; RESET ROLE goes back to the
-- superuser, which sets fixtures up and checks effects.
BEGIN;
SELECT plan(109);

-- pgTAP keeps its state in temp tables owned by the superuser; let the
-- roles under test write their results there.
GRANT ALL ON pg_temp.__tcache__ TO PUBLIC;
GRANT ALL ON SEQUENCE pg_temp.__tcache___id_seq, pg_temp.__tresults___numb_seq
  TO PUBLIC;

-- Fixtures -------------------------------------------------------------------
INSERT INTO push.apps (name) VALUES ('rl_a'), ('rl_b');
DO $$ BEGIN
  PERFORM push.register_device(push.app_id('rl_a'), 'fcm', 'rl-a-device-0001',
                               'u1', p_app_version => '1.0');
  PERFORM push.register_device(push.app_id('rl_b'), 'fcm', 'rl-b-device-0001',
                               'u1', p_app_version => '2.0');
END $$;
INSERT INTO push.pushes (app_id, user_id, payload)
VALUES (push.app_id('rl_b'), 'u1', '{"title": "b secret"}');

INSERT INTO push.apns_credentials (app_id, topic, team_id, key_id, signing_key)
VALUES (push.app_id('rl_a'), 'com.example.a', 'TEAM123456', 'KEY1234567',
        E'-----BEGIN PRIVATE KEY-----\nMIG\n-----END PRIVATE KEY-----');
INSERT INTO push.fcm_credentials (app_id, project_id, service_account)
VALUES (push.app_id('rl_a'), 'proj-a',
        '{"client_email": "a@proj-a.iam.gserviceaccount.com", "private_key": "k"}');
INSERT INTO push.wns_credentials (app_id, client_id, client_secret, tenant_id)
VALUES (push.app_id('rl_a'), 'client-a', 'secret-a', 'tenant-a');
INSERT INTO push.mpns_credentials (app_id) VALUES (push.app_id('rl_a'));
INSERT INTO push.webpush_credentials (app_id, vapid_public_key,
                                      vapid_private_key, subject)
VALUES (push.app_id('rl_a'), repeat('B', 87), repeat('p', 43),
        'mailto:ops@example.com');

CREATE ROLE rl_app_a LOGIN;       GRANT pgpush_app TO rl_app_a;
CREATE ROLE rl_app_b LOGIN;       GRANT pgpush_app TO rl_app_b;
CREATE ROLE rl_app_none LOGIN;    GRANT pgpush_app TO rl_app_none;
CREATE ROLE rl_analyst LOGIN;     GRANT pgpush_analyst TO rl_analyst;
CREATE ROLE rl_admin LOGIN;       GRANT pgpush_admin TO rl_admin;
CREATE ROLE rl_dispatcher LOGIN;  GRANT pgpush_dispatcher TO rl_dispatcher;
INSERT INTO push.app_bindings (role_name, app_id)
VALUES ('rl_app_a', push.app_id('rl_a')), ('rl_app_b', push.app_id('rl_b'));

CREATE TEMP TABLE creds (n int, t text);
INSERT INTO creds VALUES (1, 'apns_credentials'), (2, 'fcm_credentials'),
  (3, 'wns_credentials'), (4, 'mpns_credentials'), (5, 'webpush_credentials');
GRANT SELECT ON creds TO PUBLIC;

-- Credentials: analyst and app roles never; dispatcher and admin yes ----------
SET LOCAL ROLE rl_analyst;
SELECT throws_ok(format('SELECT * FROM push.%I', t), '42501',
                 format('permission denied for table %s', t),
                 'pgpush_analyst cannot read push.' || t)
FROM creds ORDER BY n;
RESET ROLE;
SET LOCAL ROLE rl_app_a;
SELECT throws_ok(format('SELECT * FROM push.%I', t), '42501',
                 format('permission denied for table %s', t),
                 'pgpush_app cannot read push.' || t)
FROM creds ORDER BY n;
RESET ROLE;
SET LOCAL ROLE rl_dispatcher;
SELECT results_eq(format('SELECT count(*)::int FROM push.%I', t), ARRAY[1],
                  'pgpush_dispatcher reads push.' || t)
FROM creds ORDER BY n;
RESET ROLE;
SET LOCAL ROLE rl_admin;
SELECT results_eq(format('SELECT count(*)::int FROM push.%I', t), ARRAY[1],
                  'pgpush_admin reads push.' || t)
FROM creds ORDER BY n;
RESET ROLE;

-- pgpush_analyst ----------------------------------------------------------------
SET LOCAL ROLE rl_analyst;
SELECT lives_ok('SELECT count(*) FROM push.deliveries',
                'analyst reads push.deliveries');
SELECT lives_ok('SELECT count(*) FROM push.stats_minute',
                'analyst reads push.stats_minute');
SELECT lives_ok('SELECT * FROM push.stats_hourly',
                'analyst reads push.stats_hourly');
SELECT lives_ok('SELECT * FROM push.stats_daily',
                'analyst reads push.stats_daily');
SELECT lives_ok('SELECT count(*) FROM push.stats_inbox',
                'analyst reads push.stats_inbox');
SELECT throws_ok($$INSERT INTO push.stats_inbox (minute, app_id, outcome,
                   count) VALUES (now(), push.app_id('rl_a'), 'no_device', 1)$$,
                 '42501', 'permission denied for table stats_inbox',
                 'analyst cannot write push.stats_inbox');
SELECT throws_ok('SELECT push.fold_stats_inbox()', '42501',
                 'permission denied for function fold_stats_inbox',
                 'analyst cannot fold the stats inbox');
SELECT results_eq($$
  SELECT app_version FROM push.devices WHERE user_id = 'u1'
  ORDER BY app_version$$, ARRAY['1.0', '2.0'],
  'analyst reads device attributes, of every app');
SELECT results_eq($$
  SELECT count(*)::int FROM push.devices d JOIN push.apps a ON a.id = d.app_id
  WHERE a.name IN ('rl_a', 'rl_b')
    AND d.id IS NOT NULL AND d.platform IS NOT NULL AND d.os_version IS NULL
    AND d.device_model IS NULL AND d.timezone IS NULL AND d.locale IS NULL
    AND d.created_at <= d.last_seen_at AND d.invalidated_at IS NULL
    AND d.invalid_reason IS NULL AND d.updated_at IS NOT NULL$$, ARRAY[2],
  'analyst reads every attribute column of push.devices');
SELECT throws_ok('SELECT token FROM push.devices', '42501',
                 'permission denied for table devices',
                 'analyst cannot read push.devices.token');
SELECT throws_ok('SELECT * FROM push.devices', '42501',
                 'permission denied for table devices',
                 'analyst cannot SELECT * from push.devices (it has token)');
SELECT throws_ok('SELECT webpush_p256dh, webpush_auth FROM push.devices',
                 '42501', 'permission denied for table devices',
                 'analyst cannot read the Web Push subscription keys');
SELECT throws_ok('SELECT token FROM push.pushes', '42501',
                 'permission denied for table pushes',
                 'analyst cannot read tokens through push.pushes.token');
SELECT lives_ok('SELECT count(*), min(enqueued_at) FROM push.queue',
                'analyst reads queue depth and age');
SELECT throws_ok('SELECT token FROM push.queue', '42501',
                 'permission denied for table queue',
                 'analyst cannot read push.queue.token');
SELECT results_eq($$SELECT payload ->> 'title' FROM push.pushes
                    WHERE app_id = push.app_id('rl_b')$$,
                  ARRAY['b secret'], 'analyst reads pushes of every app');
SELECT throws_ok($$INSERT INTO push.pushes (app_id, user_id, payload)
                   VALUES (push.app_id('rl_a'), 'u1', '{"title": "x"}')$$,
                 '42501', 'permission denied for table pushes',
                 'analyst cannot enqueue');
SELECT throws_ok($$UPDATE push.apps SET paused = true$$, '42501',
                 'permission denied for table apps',
                 'analyst cannot change apps');
SELECT throws_ok($$SELECT * FROM push.app_bindings$$, '42501',
                 'permission denied for table app_bindings',
                 'analyst cannot read app bindings');
RESET ROLE;

-- pgpush_app bound to app A --------------------------------------------------------
SET LOCAL ROLE rl_app_a;
SELECT lives_ok($$
  INSERT INTO push.pushes (app_id, user_id, payload)
  VALUES (push.app_id('rl_a'), 'u1', '{"title": "a user push"}')$$,
  'app role enqueues a user push for its app');
SELECT lives_ok($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('rl_a'), 'fcm', 'rl-a-unregistered-1',
          '{"title": "a token push"}')$$,
  'app role enqueues a token push for its app');
SELECT lives_ok($$
  INSERT INTO push.pushes (app_id, device_id, payload)
  SELECT app_id, id, '{"title": "a device push"}' FROM push.devices$$,
  'app role enqueues device pushes for the devices it can see');
SELECT lives_ok($$
  INSERT INTO push.pushes (app_id, user_id, payload, idempotency_key)
  VALUES (push.app_id('rl_a'), 'u1', '{"title": "a keyed push"}', 'rl-key-1')$$,
  'app role enqueues a push with an idempotency key');
SELECT results_eq($$SELECT payload ->> 'title' FROM push.pushes
                    WHERE idempotency_key IS NULL ORDER BY 1$$,
  ARRAY['a device push', 'a token push', 'a user push'],
  'app role reads its own pushes and sees none of app B''s');
SELECT lives_ok($$
  INSERT INTO push.pushes (app_id, user_id, payload)
  VALUES (push.app_id('rl_a'), 'rl-nobody', '{"title": "a nobody push"}')$$,
  'app role enqueues a push to a user without devices (counted by the '
  'trigger in push.stats_inbox, which the role cannot touch)');
SELECT throws_ok('SELECT count(*) FROM push.stats_inbox', '42501',
                 'permission denied for table stats_inbox',
                 'app role cannot read push.stats_inbox');
SELECT throws_ok($$INSERT INTO push.stats_inbox (minute, app_id, outcome,
                   count) VALUES (now(), push.app_id('rl_a'), 'no_device', 9)$$,
                 '42501', 'permission denied for table stats_inbox',
                 'app role cannot write push.stats_inbox');
SELECT throws_ok('DELETE FROM push.stats_inbox', '42501',
                 'permission denied for table stats_inbox',
                 'app role cannot delete from push.stats_inbox');
SELECT throws_ok('SELECT push.fold_stats_inbox()', '42501',
                 'permission denied for function fold_stats_inbox',
                 'app role cannot fold the stats inbox');
SELECT throws_ok($$SELECT push.finish_unsendable(1, push.app_id('rl_a'),
                    NULL, NULL, NULL, now(), 'forged')$$, '42501',
                 'permission denied for function finish_unsendable',
                 'app role cannot call the trigger''s helper directly');
SELECT results_eq($$SELECT token FROM push.devices$$,
                  ARRAY['rl-a-device-0001'],
                  'app role reads its app''s devices, tokens included');
SELECT results_eq($$SELECT count(*)::int FROM push.devices
                    WHERE app_id = push.app_id('rl_b')$$, ARRAY[0],
                  'app role sees none of app B''s devices');
SELECT lives_ok($$SELECT push.register_device(push.app_id('rl_a'), 'fcm',
                    'rl-a-device-0002', 'u2')$$,
                'app role registers a device for its app');
SELECT lives_ok($$SELECT push.register_device(push.app_id('rl_a'), 'fcm',
                    'rl-a-device-0001', 'u1', p_app_version => '1.1')$$,
                'app role refreshes a device of its app');
SELECT lives_ok($$INSERT INTO push.devices (app_id, platform, token)
                  VALUES (push.app_id('rl_a'), 'fcm', 'rl-a-device-0003')$$,
                'app role inserts a device of its app directly');
SELECT results_eq($$SELECT count(*)::int FROM push.app_bindings$$, ARRAY[1],
                  'app role sees only its own binding');

SELECT throws_ok($$
  INSERT INTO push.pushes (app_id, user_id, payload)
  VALUES (push.app_id('rl_b'), 'u1', '{"title": "x"}')$$,
  '42501', format('pgpush: role "rl_app_a" may not use app %s',
                  push.app_id('rl_b')),
  'app role enqueuing for app B gets a clear error');
SELECT throws_ok($$
  INSERT INTO push.pushes (app_id, user_id, payload, idempotency_key)
  VALUES (push.app_id('rl_b'), 'u1', '{"title": "x"}', 'probe')$$,
  '42501', format('pgpush: role "rl_app_a" may not use app %s',
                  push.app_id('rl_b')),
  'app role cannot probe app B''s idempotency keys');
SELECT throws_ok($$
  INSERT INTO push.pushes (app_id, user_id, payload)
  VALUES (push.app_id('rl_a'), 'u1', '{"title": "first row"}'),
         (push.app_id('rl_b'), 'u1', '{"title": "last row"}')$$,
  '42501', format('pgpush: role "rl_app_a" may not use app %s',
                  push.app_id('rl_b')),
  'a statement with one row for app B is refused as a whole');
SELECT results_eq($$SELECT count(*)::int FROM push.pushes
                    WHERE payload ->> 'title' = 'first row'$$, ARRAY[0],
                  '... and its rows for app A are not enqueued');
SELECT throws_ok($$SELECT push.register_device(push.app_id('rl_b'), 'fcm',
                    'rl-b-device-0009', 'u9')$$,
  '42501', format('pgpush: role "rl_app_a" may not use app %s',
                  push.app_id('rl_b')),
  'app role registering a device in app B gets a clear error');
SELECT throws_ok($$INSERT INTO push.devices (app_id, platform, token)
                   VALUES (push.app_id('rl_b'), 'fcm', 'rl-b-device-0008')$$,
  '42501', format('pgpush: role "rl_app_a" may not use app %s',
                  push.app_id('rl_b')),
  'app role inserting a device into app B gets a clear error');
SELECT throws_ok($$UPDATE push.devices SET app_id = push.app_id('rl_b')
                   WHERE token = 'rl-a-device-0003'$$,
  '42501', format('pgpush: role "rl_app_a" may not use app %s',
                  push.app_id('rl_b')),
  'app role cannot move its device into app B');
SELECT results_eq($$WITH u AS (UPDATE push.devices SET locale = 'xx'
                      WHERE app_id = push.app_id('rl_b') RETURNING 1)
                    SELECT count(*)::int FROM u$$, ARRAY[0],
                  'app role''s UPDATE of app B''s devices touches no row');
SELECT throws_ok($$UPDATE push.apps SET paused = true
                   WHERE id = push.app_id('rl_a')$$,
  '42501', 'permission denied for table apps',
  'app role cannot UPDATE push.apps (not even its own app)');
SELECT throws_ok($$INSERT INTO push.app_bindings (role_name, app_id)
                   VALUES ('rl_app_a', push.app_id('rl_b'))$$,
  '42501', 'permission denied for table app_bindings',
  'app role cannot bind itself to another app');
SELECT throws_ok('SELECT count(*) FROM push.queue', '42501',
                 'permission denied for table queue',
                 'app role cannot read push.queue');
SELECT throws_ok('DELETE FROM push.queue', '42501',
                 'permission denied for table queue',
                 'app role cannot delete from push.queue');
SELECT throws_ok('SELECT count(*) FROM push.deliveries', '42501',
                 'permission denied for table deliveries',
                 'app role cannot read push.deliveries');
SELECT throws_ok($$INSERT INTO push.deliveries (push_id, app_id, outcome)
                   VALUES (1, push.app_id('rl_a'), 'sent')$$, '42501',
                 'permission denied for table deliveries',
                 'app role cannot write push.deliveries');
SELECT throws_ok('DELETE FROM push.pushes', '42501',
                 'permission denied for table pushes',
                 'app role cannot delete pushes');
SELECT throws_ok('DELETE FROM push.devices', '42501',
                 'permission denied for table devices',
                 'app role cannot delete devices');
SELECT throws_ok('SELECT count(*) FROM push.stats_minute', '42501',
                 'permission denied for table stats_minute',
                 'app role cannot read stats');
RESET ROLE;

-- What app A's role did, seen by the superuser.
SELECT results_eq($$
  SELECT p.payload ->> 'title', count(q.id)::int FROM push.pushes p
  LEFT JOIN push.queue q ON q.push_id = p.id
  WHERE p.app_id = push.app_id('rl_a') AND p.idempotency_key IS NULL
  GROUP BY 1 ORDER BY 1$$,
  $$VALUES ('a device push', 1), ('a nobody push', 0), ('a token push', 1),
           ('a user push', 1)$$,
  'the app role''s pushes were queued, app B''s device untouched by them');
SELECT results_eq($$
  SELECT outcome::text, platform::text, count::int FROM push.stats_inbox
  WHERE app_id = push.app_id('rl_a')$$,
  $$VALUES ('no_device', NULL::text, 1)$$,
  'the app role''s push to a user without devices is counted in '
  'push.stats_inbox');
SELECT results_eq($$SELECT app_version FROM push.devices
                    WHERE token = 'rl-b-device-0001'$$, ARRAY['2.0'],
                  'app B''s device was not changed');

-- pgpush_app bound to no app ------------------------------------------------------
SET LOCAL ROLE rl_app_none;
SELECT throws_ok($$
  INSERT INTO push.pushes (app_id, user_id, payload)
  VALUES (push.app_id('rl_a'), 'u1', '{"title": "x"}')$$,
  '42501', format('pgpush: role "rl_app_none" may not use app %s',
                  push.app_id('rl_a')),
  'an unbound app role cannot enqueue for any app');
SELECT throws_ok($$SELECT push.register_device(push.app_id('rl_a'), 'fcm',
                    'rl-a-device-0007', 'u7')$$,
  '42501', format('pgpush: role "rl_app_none" may not use app %s',
                  push.app_id('rl_a')),
  'an unbound app role cannot register devices');
SELECT results_eq('SELECT count(*)::int FROM push.devices', ARRAY[0],
                  'an unbound app role sees no devices');
SELECT results_eq('SELECT count(*)::int FROM push.pushes', ARRAY[0],
                  'an unbound app role sees no pushes');
RESET ROLE;

-- pgpush_dispatcher ---------------------------------------------------------------
SET LOCAL ROLE rl_dispatcher;
SELECT results_eq($$SELECT count(*)::int FROM push.devices d
                    JOIN push.apps a ON a.id = d.app_id
                    WHERE a.name IN ('rl_a', 'rl_b') AND d.token <> ''$$,
                  ARRAY[4], 'dispatcher reads every app''s devices and tokens');
SELECT lives_ok($$UPDATE push.apps SET banned_until = now() + interval '10 min',
                    ban_reason = 'auth failures', banned_by = 'pgpushd'
                  WHERE name = 'rl_a'$$,
                'dispatcher can ban an app (ban columns)');
SELECT throws_ok($$UPDATE push.apps SET paused = true WHERE name = 'rl_a'$$,
                 '42501', 'permission denied for table apps',
                 'dispatcher cannot pause an app');
SELECT throws_ok($$UPDATE push.apps SET enabled = false WHERE name = 'rl_a'$$,
                 '42501', 'permission denied for table apps',
                 'dispatcher cannot disable an app');
SELECT lives_ok($$UPDATE push.devices SET invalidated_at = now(),
                    invalid_reason = 'fcm:UNREGISTERED'
                  WHERE token = 'rl-b-device-0001'$$,
                'dispatcher can invalidate a device');
SELECT throws_ok($$UPDATE push.devices SET token = 'rl-b-device-0002'
                   WHERE token = 'rl-b-device-0001'$$, '42501',
                 'permission denied for table devices',
                 'dispatcher cannot change a device''s token');
SELECT throws_ok($$UPDATE push.devices SET user_id = 'someone'$$, '42501',
                 'permission denied for table devices',
                 'dispatcher cannot change a device''s user');
SELECT throws_ok($$INSERT INTO push.devices (app_id, platform, token)
                   VALUES (push.app_id('rl_a'), 'fcm', 'rl-a-device-0005')$$,
                 '42501', 'permission denied for table devices',
                 'dispatcher cannot register devices');
SELECT throws_ok($$INSERT INTO push.pushes (app_id, user_id, payload)
                   VALUES (push.app_id('rl_a'), 'u1', '{"title": "x"}')$$,
                 '42501', 'permission denied for table pushes',
                 'dispatcher cannot enqueue pushes');
SELECT lives_ok($$UPDATE push.queue SET lease_owner = 'rl:1:0',
                    lease_expires_at = now() + interval '30 s',
                    attempts = attempts + 1
                  WHERE app_id = push.app_id('rl_a')$$,
                'dispatcher can lease queue rows');
SELECT lives_ok($$WITH done AS (
                    DELETE FROM push.queue WHERE app_id = push.app_id('rl_a')
                    RETURNING *)
                  INSERT INTO push.deliveries (push_id, queue_id, app_id,
                    platform, device_id, outcome, attempt, enqueued_at)
                  SELECT push_id, id, app_id, platform, device_id, 'sent',
                    attempts, enqueued_at FROM done$$,
                'dispatcher can finish queue rows into push.deliveries');
SELECT throws_ok('DELETE FROM push.deliveries', '42501',
                 'permission denied for table deliveries',
                 'dispatcher cannot delete delivery history');
SELECT throws_ok($$UPDATE push.deliveries SET outcome = 'failed'$$, '42501',
                 'permission denied for table deliveries',
                 'dispatcher cannot rewrite delivery history');
SELECT lives_ok($$INSERT INTO push.stats_minute (minute, app_id, platform,
                    outcome, count)
                  VALUES (date_trunc('minute', now()), push.app_id('rl_a'),
                          'fcm', 'sent', 4)
                  ON CONFLICT (minute, app_id, platform, campaign_id, outcome)
                  DO UPDATE SET count = push.stats_minute.count
                                        + EXCLUDED.count$$,
                'dispatcher merges stats with INSERT ... ON CONFLICT');
SELECT results_eq('SELECT push.fold_stats_inbox()', ARRAY[1::bigint],
                  'dispatcher folds the stats inbox');
SELECT throws_ok($$INSERT INTO push.stats_inbox (minute, app_id, outcome,
                   count) VALUES (now(), push.app_id('rl_a'), 'no_device', 1)$$,
                 '42501', 'permission denied for table stats_inbox',
                 'dispatcher cannot write push.stats_inbox directly');
SELECT lives_ok($$INSERT INTO push.dispatchers (id, host, pid, version)
                  VALUES ('rl:1:0', 'rl', 1, 'test')$$,
                'dispatcher writes its heartbeat row');
SELECT lives_ok($$INSERT INTO push.debug_events (push_id, step)
                  VALUES (1, 'claimed')$$,
                'dispatcher writes debug events');
SELECT throws_ok($$UPDATE push.fcm_credentials SET enabled = false$$,
                 '42501', 'permission denied for table fcm_credentials',
                 'dispatcher cannot change credentials');
SELECT throws_ok($$INSERT INTO push.app_bindings (role_name, app_id)
                   VALUES ('rl_dispatcher', push.app_id('rl_a'))$$, '42501',
                 'permission denied for table app_bindings',
                 'dispatcher cannot bind roles to apps');
RESET ROLE;

SELECT results_eq($$SELECT banned_by, paused FROM push.apps
                    WHERE name = 'rl_a'$$,
                  $$VALUES ('pgpushd', false)$$,
                  'the dispatcher''s ban took effect; the pause did not');
SELECT results_eq($$SELECT invalid_reason FROM push.devices
                    WHERE token = 'rl-b-device-0001'$$,
                  ARRAY['fcm:UNREGISTERED'],
                  'the dispatcher''s invalidation took effect');

-- pgpush_admin ----------------------------------------------------------------------
SET LOCAL ROLE rl_admin;
SELECT lives_ok($$UPDATE push.apps SET paused = true, banned_until = NULL
                  WHERE name = 'rl_a'$$, 'admin pauses and unbans an app');
SELECT lives_ok($$UPDATE push.wns_credentials SET client_secret = 'rotated'$$,
                'admin rotates a credential');
SELECT lives_ok($$INSERT INTO push.app_bindings (role_name, app_id)
                  VALUES ('rl_app_none', push.app_id('rl_b'))$$,
                'admin binds a role to an app');
SELECT lives_ok($$INSERT INTO push.pushes (app_id, user_id, payload)
                  VALUES (push.app_id('rl_b'), 'u1', '{"title": "admin"}')$$,
                'admin enqueues for any app');
SELECT results_eq($$SELECT count(*)::int FROM push.devices d
                    JOIN push.apps a ON a.id = d.app_id
                    WHERE a.name IN ('rl_a', 'rl_b')$$, ARRAY[4],
                  'admin sees every app''s devices');
SELECT lives_ok($$DELETE FROM push.deliveries
                  WHERE app_id = push.app_id('rl_a')$$,
                'admin can delete delivery history');
RESET ROLE;

-- A new binding takes effect at once.
SET LOCAL ROLE rl_app_none;
SELECT results_eq($$SELECT token FROM push.devices$$,
                  ARRAY['rl-b-device-0001'],
                  'a role bound by the admin sees that app''s devices');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
