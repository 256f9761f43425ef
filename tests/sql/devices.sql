-- devices.sql: registering and refreshing devices (push.register_device),
-- the (app, platform, token) uniqueness and Web Push subscription keys.
BEGIN;
SELECT plan(30);

INSERT INTO push.apps (name) VALUES ('dv_shop'), ('dv_other');

CREATE TEMP TABLE reg (step text PRIMARY KEY, id bigint);
CREATE TEMP VIEW dev AS
SELECT d.* FROM push.devices d WHERE d.app_id = push.app_id('dv_shop');

-- First registration ----------------------------------------------------------
INSERT INTO reg SELECT 'first', push.register_device(push.app_id('dv_shop'),
  'apns', repeat('d1', 32), p_user_id => 'ann', p_app_version => '1.0',
  p_os_version => 'iOS 17.1', p_device_model => 'iPhone15,2',
  p_timezone => 'Europe/Berlin', p_locale => 'de-DE');
SELECT ok((SELECT id FROM reg WHERE step = 'first') IS NOT NULL,
          'register_device returns the new device''s id');
SELECT results_eq($$
  SELECT id, platform::text, token, user_id, app_version, os_version,
         device_model, timezone, locale FROM dev$$,
  $$SELECT (SELECT id FROM reg WHERE step = 'first'), 'apns',
           repeat('d1', 32), 'ann', '1.0', 'iOS 17.1', 'iPhone15,2',
           'Europe/Berlin', 'de-DE'$$,
  'register_device inserts the device with its attributes');
SELECT ok((SELECT created_at = now() AND last_seen_at = now()
                  AND invalidated_at IS NULL AND invalid_reason IS NULL
           FROM dev), 'a new device is active, created and seen now');

-- Time passes; the dispatcher invalidates the token -------------------------------
UPDATE push.devices SET created_at = now() - interval '10 days',
       updated_at = now() - interval '10 days',
       last_seen_at = now() - interval '10 days'
 WHERE token = repeat('d1', 32);
UPDATE push.devices SET invalidated_at = now() - interval '1 day',
       invalid_reason = 'apns:Unregistered'
 WHERE token = repeat('d1', 32);
SELECT ok((SELECT updated_at = now() FROM dev),
          'an UPDATE of a device sets updated_at');
UPDATE push.devices SET updated_at = now() - interval '10 days'
 WHERE token = repeat('d1', 32);

-- Refresh: same (app, platform, token) -------------------------------------------
INSERT INTO reg SELECT 'refresh', push.register_device(push.app_id('dv_shop'),
  'apns', repeat('d1', 32), p_user_id => 'ann', p_app_version => '1.1');
SELECT is((SELECT id FROM reg WHERE step = 'refresh'),
          (SELECT id FROM reg WHERE step = 'first'),
          'a refresh returns the same device id');
SELECT is((SELECT count(*)::int FROM dev), 1, '... and adds no row');
SELECT is((SELECT last_seen_at FROM dev), now(),
          'a refresh moves last_seen_at to now');
SELECT is((SELECT updated_at FROM dev), now(), '... and updated_at');
SELECT is((SELECT created_at FROM dev), now() - interval '10 days',
          '... but keeps created_at');
SELECT is((SELECT app_version FROM dev), '1.1',
          'an attribute passed again is updated');
SELECT results_eq($$SELECT os_version, device_model, timezone, locale
                    FROM dev$$,
  $$VALUES ('iOS 17.1', 'iPhone15,2', 'Europe/Berlin', 'de-DE')$$,
  'attributes passed as NULL are kept');
SELECT ok((SELECT invalidated_at IS NULL AND invalid_reason IS NULL FROM dev),
          're-registering clears the invalidation');

INSERT INTO push.pushes (app_id, user_id, payload)
VALUES (push.app_id('dv_shop'), 'ann', '{"title": "back"}');
SELECT is((SELECT count(*)::int FROM push.queue q JOIN push.pushes p
           ON p.id = q.push_id WHERE p.payload ->> 'title' = 'back'), 1,
          'the re-registered device gets user pushes again');

SELECT lives_ok($$SELECT push.register_device(push.app_id('dv_shop'), 'apns',
                    repeat('d1', 32), p_user_id => NULL)$$,
                'a refresh without a user (signed out)');
SELECT is((SELECT user_id FROM dev), NULL,
          '... clears user_id: the device no longer gets that user''s pushes');
SELECT is((SELECT app_version FROM dev), '1.1',
          '... and still keeps the other attributes');

-- Uniqueness per (app, platform, token) ------------------------------------------------
SELECT throws_ok($$INSERT INTO push.devices (app_id, platform, token)
                   VALUES (push.app_id('dv_shop'), 'apns', repeat('d1', 32))$$,
  '23505', 'duplicate key value violates unique constraint '
           '"devices_app_platform_token_key"',
  'a second row for the same (app, platform, token) is refused');
SELECT isnt((SELECT push.register_device(push.app_id('dv_other'), 'apns',
               repeat('d1', 32))),
            (SELECT id FROM reg WHERE step = 'first'),
            'the same token in another app is another device');
SELECT lives_ok($$
  INSERT INTO push.devices (app_id, platform, token) VALUES
    (push.app_id('dv_shop'), 'wns', 'https://db5.notify.windows.com/?t=dv1'),
    (push.app_id('dv_shop'), 'mpns', 'https://db5.notify.windows.com/?t=dv1')$$,
  'the same token on two platforms is two devices');
SELECT throws_ok($$SELECT push.register_device(2147483000, 'fcm',
                    'dv-fcm-token-000001')$$,
  '23503', 'insert or update on table "devices" violates foreign key '
           'constraint "devices_app_id_fkey"',
  'a device of an app that does not exist is refused');

-- Web Push subscriptions need their keys ----------------------------------------------
SELECT throws_ok($$SELECT push.register_device(push.app_id('dv_shop'),
                    'webpush', 'https://fcm.googleapis.com/fcm/send/dv1')$$,
  '23502', 'pgpush: a webpush device needs webpush_p256dh and webpush_auth '
           '(the subscription''s keys)',
  'a webpush device without keys is refused');
SELECT throws_ok($$SELECT push.register_device(push.app_id('dv_shop'),
                    'webpush', 'https://fcm.googleapis.com/fcm/send/dv1',
                    p_webpush_p256dh => 'BNcRdreALRFXTkOOUHK1')$$,
  '23502', 'pgpush: a webpush device needs webpush_p256dh and webpush_auth '
           '(the subscription''s keys)',
  'a webpush device with p256dh but no auth is refused');
SELECT throws_ok($$INSERT INTO push.devices (app_id, platform, token,
                    webpush_auth)
                   VALUES (push.app_id('dv_shop'), 'webpush',
                    'https://fcm.googleapis.com/fcm/send/dv1', 'tBHItJI5svbpez7')$$,
  '23502', 'pgpush: a webpush device needs webpush_p256dh and webpush_auth '
           '(the subscription''s keys)',
  'a webpush device with auth but no p256dh is refused');
SELECT lives_ok($$SELECT push.register_device(push.app_id('dv_shop'),
                   'webpush', 'https://fcm.googleapis.com/fcm/send/dv1',
                   p_user_id => 'ann',
                   p_webpush_p256dh => 'BNcRdreALRFXTkOOUHK1',
                   p_webpush_auth => 'tBHItJI5svbpez7')$$,
                'a webpush device with both keys is registered');
SELECT throws_ok($$SELECT push.register_device(push.app_id('dv_shop'), 'fcm',
                    'dv-fcm-token-000001', p_webpush_p256dh => 'BNcR',
                    p_webpush_auth => 'tBHI')$$,
  '23514', 'pgpush: webpush_p256dh and webpush_auth are only for webpush '
           'devices, not fcm',
  'subscription keys on a non-webpush device are refused');
SELECT throws_ok($$UPDATE push.devices SET webpush_auth = NULL
                   WHERE token = 'https://fcm.googleapis.com/fcm/send/dv1'$$,
  '23502', 'pgpush: a webpush device needs webpush_p256dh and webpush_auth '
           '(the subscription''s keys)',
  'a webpush device cannot lose a key by UPDATE');
SELECT lives_ok($$SELECT push.register_device(push.app_id('dv_shop'),
                   'webpush', 'https://fcm.googleapis.com/fcm/send/dv1',
                   p_user_id => 'ann', p_webpush_p256dh => 'BNewKey',
                   p_webpush_auth => 'newAuth')$$,
                'a webpush refresh with new keys');
SELECT results_eq($$SELECT webpush_p256dh, webpush_auth FROM push.devices
                    WHERE token = 'https://fcm.googleapis.com/fcm/send/dv1'$$,
                  $$VALUES ('BNewKey', 'newAuth')$$,
                  '... stores the new keys');
SELECT lives_ok($$SELECT push.register_device(push.app_id('dv_shop'),
                   'webpush', 'https://fcm.googleapis.com/fcm/send/dv1',
                   p_user_id => 'ann')$$,
                'a webpush refresh that passes no keys (NULL = keep)');
SELECT results_eq($$SELECT webpush_p256dh, webpush_auth FROM push.devices
                    WHERE token = 'https://fcm.googleapis.com/fcm/send/dv1'$$,
                  $$VALUES ('BNewKey', 'newAuth')$$,
                  '... keeps the stored keys');

SELECT * FROM finish();
ROLLBACK;
