-- bad_input.sql: every bad-input case of the enqueue contract is
-- rejected at INSERT with a clear "pgpush: ..." error, and nothing of the
-- statement is enqueued (push.pushes, push.queue, push.deliveries,
-- push.devices and push.idempotency_keys are unchanged after each).
-- Payload sizes are push.payload_size(platform, payload): the JSON text of
-- the neutral fields with that platform's override merged in.
BEGIN;
SELECT plan(124);

-- Fixtures --------------------------------------------------------------
INSERT INTO push.apps (name) VALUES ('bi_shop'), ('bi_other');
INSERT INTO push.apps (name, enabled) VALUES ('bi_off', false);
DO $$ BEGIN PERFORM push.register_device(push.app_id('bi_shop'), 'webpush',
  'https://fcm.googleapis.com/fcm/send/bi-web-1', p_webpush_p256dh => 'BP256dh',
  p_webpush_auth => 'authsecret'); END $$;
DO $$ BEGIN PERFORM push.register_device(push.app_id('bi_other'), 'fcm',
  'bi-other-device-token-0001'); END $$;

-- Everything an enqueue could have written, as one comparable string.
CREATE FUNCTION pg_temp.footprint() RETURNS text LANGUAGE sql AS $$
  SELECT format('pushes=%s queue=%s deliveries=%s devices=%s keys=%s '
                'inbox=%s',
    (SELECT count(*) FROM push.pushes), (SELECT count(*) FROM push.queue),
    (SELECT count(*) FROM push.deliveries), (SELECT count(*) FROM push.devices),
    (SELECT count(*) FROM push.idempotency_keys),
    (SELECT count(*) FROM push.stats_inbox))
$$;

-- rejected(sql, sqlstate, message, what): two tests - the statement fails
-- with exactly this error, and it left nothing behind.
CREATE FUNCTION pg_temp.rejected(p_sql text, p_state text, p_msg text,
                                 p_what text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  v_before text := pg_temp.footprint();
BEGIN
  RETURN NEXT throws_ok(p_sql, p_state, p_msg, p_what);
  RETURN NEXT is(pg_temp.footprint(), v_before,
                 p_what || ': nothing enqueued');
END $$;

CREATE FUNCTION pg_temp.rejected_like(p_sql text, p_state text, p_like text,
                                      p_what text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  v_before text := pg_temp.footprint();
  v_state  text;
  v_msg    text;
BEGIN
  BEGIN
    EXECUTE p_sql;
  EXCEPTION WHEN OTHERS THEN
    v_state := SQLSTATE; v_msg := SQLERRM;
  END;
  RETURN NEXT ok(coalesce(v_state = p_state AND v_msg LIKE p_like, false),
                 p_what) ||
    CASE WHEN v_state = p_state AND v_msg LIKE p_like THEN '' ELSE
      E'\n' || diag(format('got: %s %s', coalesce(v_state, '(no error)'),
                           v_msg), format('want: %s %s', p_state, p_like))
    END;
  RETURN NEXT is(pg_temp.footprint(), v_before,
                 p_what || ': nothing enqueued');
END $$;

-- payload_of(platform, bytes, extra): a payload of exactly that many bytes
-- for that platform: {"title": "xxx..."} plus extra, title padded.
CREATE FUNCTION pg_temp.payload_of(p_platform push.platform, p_bytes integer,
                                   p_extra jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql AS $$
  SELECT jsonb_build_object('title', repeat('x', p_bytes -
           push.payload_size(p_platform, jsonb_build_object('title', '')
                                         || p_extra))) || p_extra
$$;

-- Tokens that are valid for their platform.
CREATE TEMP TABLE tok (platform push.platform PRIMARY KEY, token text);
INSERT INTO tok VALUES
  ('apns', repeat('ab', 32)),
  ('fcm', 'bi-fcm-token-0000001'),
  ('wns', 'https://db5p.notify.windows.com/?token=AwYAAAD'),
  ('mpns', 'https://s.notify.live.net/u/1/db3/H2LoBbmbE'),
  ('webpush', 'https://fcm.googleapis.com/fcm/send/bi-web-1');

-- The fixtures are sane: a good push is accepted.
SELECT lives_ok($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001',
          '{"title": "hi"}')$$, 'a well-formed token push is accepted');

-- App ---------------------------------------------------------------------
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (2147483000, 'fcm', 'bi-fcm-token-0000001', '{"title": "hi"}')$$,
  '23514', 'pgpush: push rejected: app_id 2147483000 does not exist',
  'unknown app id');
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_nope'), 'fcm', 'bi-fcm-token-0000001',
          '{"title": "hi"}')$$,
  '22023', 'pgpush: unknown app "bi_nope"', 'unknown app name via push.app_id');
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_off'), 'fcm', 'bi-fcm-token-0000001',
          '{"title": "hi"}')$$,
  '23514', 'pgpush: push rejected: app "bi_off" is disabled',
  'disabled app (enabled = false)');

-- The checks hold for every kind of target, including pushes that cannot be
-- sent at all (a user without devices is recorded as no_device, not queued):
-- a bad push is still rejected, not recorded.
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, user_id, payload)
  VALUES (push.app_id('bi_off'), 'bi-user-without-devices', '{"title": "hi"}')$$,
  '23514', 'pgpush: push rejected: app "bi_off" is disabled',
  'disabled app, user target without devices');
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, user_id, payload)
  VALUES (push.app_id('bi_shop'), 'bi-user-without-devices', '[1, 2]')$$,
  '23514', 'pgpush: push rejected: payload must be a JSON object, not array',
  'payload array, user target without devices');

-- Target ------------------------------------------------------------------
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, payload)
  VALUES (push.app_id('bi_shop'), '{"title": "hi"}')$$,
  '23514', 'pgpush: push rejected: the push has no target: set device_id, '
           'token (with platform) or user_id',
  'no target');
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, platform, payload)
  VALUES (push.app_id('bi_shop'), 'fcm', '{"title": "hi"}')$$,
  '23514', 'pgpush: push rejected: the push has no target: set device_id, '
           'token (with platform) or user_id',
  'a platform alone is no target');
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, platform, token, user_id, payload)
  VALUES (push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001', 'u1',
          '{"title": "hi"}')$$,
  '23514', 'pgpush: push rejected: the push has more than one target: set '
           'only one of device_id, token or user_id',
  'two targets: token and user_id');
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, device_id, user_id, payload)
  SELECT d.app_id, d.id, 'u1', '{"title": "hi"}' FROM push.devices d
  WHERE d.app_id = push.app_id('bi_shop')$$,
  '23514', 'pgpush: push rejected: the push has more than one target: set '
           'only one of device_id, token or user_id',
  'two targets: device_id and user_id');
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, token, payload)
  VALUES (push.app_id('bi_shop'), 'bi-fcm-token-0000001', '{"title": "hi"}')$$,
  '23514', 'pgpush: push rejected: a token target needs its platform',
  'token without platform');

-- Platform ------------------------------------------------------------------
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'blackberry', 'bi-fcm-token-0000001',
          '{"title": "hi"}')$$,
  '22P02', 'invalid input value for enum push.platform: "blackberry"',
  'unknown platform');

-- Payload shape ---------------------------------------------------------------
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001',
          '[{"title": "hi"}]')$$,
  '23514', 'pgpush: push rejected: payload must be a JSON object, not array',
  'payload is a JSON array');
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001', '"hi"')$$,
  '23514', 'pgpush: push rejected: payload must be a JSON object, not string',
  'payload is a JSON string');
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001', 'null')$$,
  '23514', 'pgpush: push rejected: payload must be a JSON object, not null',
  'payload is JSON null');
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001', NULL)$$,
  '23502', 'null value in column "payload" of relation "pushes" violates '
           'not-null constraint',
  'payload is SQL NULL');
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001', '{}')$$,
  '23514', 'pgpush: push rejected: payload is empty: give it a title, body, '
           'badge, sound, data or a platform override',
  'payload is an empty object');

-- Payload size, per platform: limit + 1 rejected, limit - 1 and limit
-- accepted. The helper builds payloads of an exact push.payload_size().
SELECT is(push.payload_size('fcm', pg_temp.payload_of('fcm', 4096)), 4096,
          'test helper: payload_of builds exact sizes');
SELECT is(push.payload_size('fcm', '{"title": "hi"}'),
          octet_length('{"title": "hi"}'),
          'payload_size of a plain payload is the bytes of its JSON text');

SELECT * FROM pg_temp.rejected(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'apns', %L, %L)$$,
  repeat('ab', 32), pg_temp.payload_of('apns', 4097)),
  '23514', 'pgpush: push rejected: payload is 4097 bytes for apns, which '
           'allows 4096',
  'APNs payload of 4097 bytes');
SELECT lives_ok(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'apns', %1$L, %2$L),
         (push.app_id('bi_shop'), 'apns', %1$L, %3$L)$$,
  repeat('ab', 32), pg_temp.payload_of('apns', 4095),
  pg_temp.payload_of('apns', 4096)),
  'APNs payloads of 4095 and 4096 bytes are accepted');

SELECT * FROM pg_temp.rejected(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'apns', %L, %L)$$,
  repeat('ab', 32),
  pg_temp.payload_of('apns', 5121, '{"apns": {"push_type": "voip"}}')),
  '23514', 'pgpush: push rejected: payload is 5121 bytes for apns, which '
           'allows 5120',
  'APNs VoIP payload of 5121 bytes');
SELECT lives_ok(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'apns', %1$L, %2$L),
         (push.app_id('bi_shop'), 'apns', %1$L, %3$L)$$,
  repeat('ab', 32),
  pg_temp.payload_of('apns', 5119, '{"apns": {"push_type": "voip"}}'),
  pg_temp.payload_of('apns', 5120, '{"apns": {"push_type": "voip"}}')),
  'APNs VoIP payloads of 5119 and 5120 bytes are accepted');

SELECT * FROM pg_temp.rejected(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001', %L)$$,
  pg_temp.payload_of('fcm', 4097)),
  '23514', 'pgpush: push rejected: payload is 4097 bytes for fcm, which '
           'allows 4096',
  'FCM payload of 4097 bytes');
SELECT lives_ok(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001', %L),
         (push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001', %L)$$,
  pg_temp.payload_of('fcm', 4095), pg_temp.payload_of('fcm', 4096)),
  'FCM payloads of 4095 and 4096 bytes are accepted');

SELECT * FROM pg_temp.rejected(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'wns', %L, %L)$$,
  'https://db5p.notify.windows.com/?token=AwYAAAD',
  pg_temp.payload_of('wns', 5001)),
  '23514', 'pgpush: push rejected: payload is 5001 bytes for wns, which '
           'allows 5000',
  'WNS payload of 5001 bytes');
SELECT lives_ok(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'wns', %1$L, %2$L),
         (push.app_id('bi_shop'), 'wns', %1$L, %3$L)$$,
  'https://db5p.notify.windows.com/?token=AwYAAAD',
  pg_temp.payload_of('wns', 4999), pg_temp.payload_of('wns', 5000)),
  'WNS payloads of 4999 and 5000 bytes are accepted');

SELECT * FROM pg_temp.rejected(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'mpns', %L, %L)$$,
  'https://s.notify.live.net/u/1/db3/H2LoBbmbE',
  pg_temp.payload_of('mpns', 3073)),
  '23514', 'pgpush: push rejected: payload is 3073 bytes for mpns, which '
           'allows 3072',
  'MPNS payload of 3073 bytes');
SELECT lives_ok(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'mpns', %1$L, %2$L),
         (push.app_id('bi_shop'), 'mpns', %1$L, %3$L)$$,
  'https://s.notify.live.net/u/1/db3/H2LoBbmbE',
  pg_temp.payload_of('mpns', 3071), pg_temp.payload_of('mpns', 3072)),
  'MPNS payloads of 3071 and 3072 bytes are accepted');

SELECT * FROM pg_temp.rejected(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'webpush', %L, %L)$$,
  'https://fcm.googleapis.com/fcm/send/bi-web-1',
  pg_temp.payload_of('webpush', 3994)),
  '23514', 'pgpush: push rejected: payload is 3994 bytes for webpush, which '
           'allows 3993',
  'Web Push payload of 3994 bytes');
SELECT lives_ok(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'webpush', %1$L, %2$L),
         (push.app_id('bi_shop'), 'webpush', %1$L, %3$L)$$,
  'https://fcm.googleapis.com/fcm/send/bi-web-1',
  pg_temp.payload_of('webpush', 3992), pg_temp.payload_of('webpush', 3993)),
  'Web Push payloads of 3992 and 3993 bytes are accepted');

-- The limit applies to what the target platform receives: an override for
-- another platform does not count, one for this platform does.
SELECT lives_ok(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'mpns', %L, %L)$$,
  'https://s.notify.live.net/u/1/db3/H2LoBbmbE',
  jsonb_build_object('title', 'hi', 'fcm',
                     jsonb_build_object('body', repeat('y', 4000)))),
  'a big override for another platform does not count against MPNS');
SELECT * FROM pg_temp.rejected_like(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'mpns', %L, %L)$$,
  'https://s.notify.live.net/u/1/db3/H2LoBbmbE',
  jsonb_build_object('title', 'hi', 'mpns',
                     jsonb_build_object('body', repeat('y', 4000)))),
  '23514', 'pgpush: push rejected: payload is % bytes for mpns, which allows '
           '3072',
  'a big override for the target platform counts');

-- TTL -------------------------------------------------------------------------
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, platform, token, payload, ttl)
  VALUES (push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001',
          '{"title": "hi"}', -1)$$,
  '23514', 'pgpush: push rejected: ttl must be 0 or more seconds, not -1',
  'negative TTL');
SELECT lives_ok($$
  INSERT INTO push.pushes (app_id, platform, token, payload, ttl)
  VALUES (push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001',
          '{"title": "hi"}', 0)$$,
  'TTL 0 (send now or never) is accepted');

-- Token targets that cannot be valid for their platform -------------------------
SELECT r.* FROM (VALUES
  (1, 'apns'::push.platform, repeat('zz', 32),
   'an APNs device token is 64 or more hexadecimal digits', 'APNs non-hex'),
  (2, 'apns', repeat('ab', 16),
   'an APNs device token is 64 or more hexadecimal digits',
   'APNs too short'),
  (3, 'fcm', 'short',
   'an FCM registration token is 16 or more characters of A-Z a-z 0-9 _ : . -',
   'FCM too short'),
  (4, 'wns', 'http://db5p.notify.windows.com/?token=AwYAAAD',
   'a WNS channel must be an https URL', 'WNS http://'),
  (5, 'wns', 'not a url', 'a WNS channel must be an https URL',
   'WNS not a URL'),
  (6, 'mpns', 'http://s.notify.live.net/u/1/db3/H2LoBbmbE',
   'an MPNS channel must be an https URL', 'MPNS http://'),
  (7, 'mpns', 's.notify.live.net/u/1', 'an MPNS channel must be an https URL',
   'MPNS not a URL'),
  (8, 'webpush', 'http://fcm.googleapis.com/fcm/send/x',
   'a Web Push endpoint must be an https URL', 'Web Push http://'),
  (9, 'webpush', 'subscription-123',
   'a Web Push endpoint must be an https URL', 'Web Push not a URL'))
  AS t(n, platform, token, msg, what)
CROSS JOIN LATERAL pg_temp.rejected(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), %L, %L, '{"title": "hi"}')$$,
  t.platform, t.token),
  '23514', 'pgpush: push rejected: ' || t.msg, 'token target: ' || t.what) r;

-- ... and the same tokens at device registration.
SELECT r.* FROM (VALUES
  (1, 'apns'::push.platform, repeat('zz', 32),
   'an APNs device token is 64 or more hexadecimal digits', 'APNs non-hex'),
  (2, 'wns', 'http://db5p.notify.windows.com/?token=AwYAAAD',
   'a WNS channel must be an https URL', 'WNS http://'),
  (3, 'wns', 'not a url', 'a WNS channel must be an https URL',
   'WNS not a URL'),
  (4, 'mpns', 'http://s.notify.live.net/u/1/db3/H2LoBbmbE',
   'an MPNS channel must be an https URL', 'MPNS http://'),
  (5, 'mpns', 's.notify.live.net/u/1', 'an MPNS channel must be an https URL',
   'MPNS not a URL'),
  (6, 'webpush', 'http://fcm.googleapis.com/fcm/send/x',
   'a Web Push endpoint must be an https URL', 'Web Push http://'),
  (7, 'webpush', 'subscription-123',
   'a Web Push endpoint must be an https URL', 'Web Push not a URL'))
  AS t(n, platform, token, msg, what)
CROSS JOIN LATERAL pg_temp.rejected(format($$
  SELECT push.register_device(push.app_id('bi_shop'), %L, %L,
    p_webpush_p256dh => %L, p_webpush_auth => %L)$$,
  t.platform, t.token,
  CASE WHEN t.platform = 'webpush' THEN 'BP256dh' END,
  CASE WHEN t.platform = 'webpush' THEN 'authsecret' END),
  '23514', format('pgpush: invalid %s device token: %s', t.platform, t.msg),
  'push.register_device: ' || t.what) r;

SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.devices (app_id, platform, token)
  VALUES (push.app_id('bi_shop'), 'apns', 'not-hex-at-all')$$,
  '23514', 'pgpush: invalid apns device token: an APNs device token is 64 or '
           'more hexadecimal digits',
  'INSERT INTO push.devices: APNs non-hex');
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.devices (app_id, platform, token)
  VALUES (push.app_id('bi_shop'), 'wns', 'http://db5p.notify.windows.com/x')$$,
  '23514', 'pgpush: invalid wns device token: a WNS channel must be an https '
           'URL',
  'INSERT INTO push.devices: WNS http://');
SELECT * FROM pg_temp.rejected($$
  UPDATE push.devices SET token = 'http://fcm.googleapis.com/fcm/send/x'
  WHERE app_id = push.app_id('bi_shop') AND platform = 'webpush'$$,
  '23514', 'pgpush: invalid webpush device token: a Web Push endpoint must '
           'be an https URL',
  'UPDATE push.devices to an http:// Web Push endpoint');

-- Collapse key ------------------------------------------------------------------
SELECT * FROM pg_temp.rejected(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload, collapse_key)
  VALUES (push.app_id('bi_shop'), 'apns', %L, '{"title": "hi"}', %L)$$,
  repeat('ab', 32), repeat('c', 65)),
  '23514', 'pgpush: push rejected: collapse_key is 65 bytes; APNs allows 64',
  'APNs collapse key of 65 bytes');
SELECT * FROM pg_temp.rejected(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload, collapse_key)
  VALUES (push.app_id('bi_shop'), 'apns', %L, '{"title": "hi"}', %L)$$,
  repeat('ab', 32), repeat('é', 33)),
  '23514', 'pgpush: push rejected: collapse_key is 66 bytes; APNs allows 64',
  'APNs collapse key of 33 two-byte characters (66 bytes)');
SELECT lives_ok(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload, collapse_key)
  VALUES (push.app_id('bi_shop'), 'apns', %L, '{"title": "hi"}', %L)$$,
  repeat('ab', 32), repeat('c', 64)),
  'APNs collapse key of 64 bytes is accepted');
SELECT lives_ok(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload, collapse_key)
  VALUES (push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001',
          '{"title": "hi"}', %L)$$, repeat('c', 65)),
  'a 65-byte collapse key is fine for FCM');

-- Nothing half enqueued: only the LAST row of a statement is bad --------------
SELECT * FROM pg_temp.rejected(format($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001', '{"title": "1"}'),
         (push.app_id('bi_shop'), 'apns', %L, '{"title": "2"}'),
         (push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001', '[3]')$$,
  repeat('ab', 32)),
  '23514', 'pgpush: push rejected: payload must be a JSON object, not array',
  'multi-row VALUES whose last row is bad');
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, platform, token, payload, ttl)
  SELECT push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001',
         jsonb_build_object('title', 'n' || i),
         CASE WHEN i = 500 THEN -5 END
  FROM generate_series(1, 500) i ORDER BY i$$,
  '23514', 'pgpush: push rejected: ttl must be 0 or more seconds, not -5',
  'INSERT ... SELECT of 500 rows whose last row is bad');
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, user_id, payload)
  SELECT push.app_id('bi_shop'), 'u' || i,
         CASE WHEN i = 100 THEN '{}' ELSE '{"title": "hi"}' END::jsonb
  FROM generate_series(1, 100) i ORDER BY i$$,
  '23514', 'pgpush: push rejected: payload is empty: give it a title, body, '
           'badge, sound, data or a platform override',
  'user-target bulk whose last row is bad (no no_device rows recorded)');
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, platform, token, payload, idempotency_key)
  VALUES (push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001',
          '{"title": "1"}', 'bi-key-1'),
         (push.app_id('bi_off'), 'fcm', 'bi-fcm-token-0000001',
          '{"title": "2"}', 'bi-key-2')$$,
  '23514', 'pgpush: push rejected: app "bi_off" is disabled',
  'a rejected statement keeps none of its idempotency keys');
SELECT lives_ok($$
  INSERT INTO push.pushes (app_id, platform, token, payload, idempotency_key)
  VALUES (push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001',
          '{"title": "1"}', 'bi-key-1')$$,
  'its key can be used again after the rejection');
SELECT is((SELECT count(*)::int FROM push.pushes
           WHERE idempotency_key = 'bi-key-1'), 1,
          '... and that insert was not a silent no-op');

-- Devices that are not this app's -----------------------------------------------
CREATE TEMP TABLE ids AS
SELECT push.app_id('bi_shop') AS shop,
       (SELECT id FROM push.devices WHERE app_id = push.app_id('bi_other'))
         AS other_device,
       (SELECT max(id) + 1000 FROM push.devices) AS no_device;
SELECT * FROM pg_temp.rejected(
  format($$INSERT INTO push.pushes (app_id, device_id, payload)
           VALUES (%s, %s, '{"title": "hi"}')$$,
         (SELECT shop FROM ids), (SELECT other_device FROM ids)),
  '23514', format('pgpush: push rejected: device %s does not exist in app %s',
                  (SELECT other_device FROM ids), (SELECT shop FROM ids)),
  'a device of another app');
SELECT * FROM pg_temp.rejected(
  format($$INSERT INTO push.pushes (app_id, device_id, payload)
           VALUES (%s, %s, '{"title": "hi"}')$$,
         (SELECT shop FROM ids), (SELECT no_device FROM ids)),
  '23514', format('pgpush: push rejected: device %s does not exist in app %s',
                  (SELECT no_device FROM ids), (SELECT shop FROM ids)),
  'a device id that does not exist');
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'webpush',
          'https://fcm.googleapis.com/fcm/send/not-registered',
          '{"title": "hi"}')$$,
  '23514', 'pgpush: push rejected: a webpush token must be a registered '
           'device (its subscription keys are needed): call '
           'push.register_device first',
  'a Web Push token target that is not a registered device');
SELECT * FROM pg_temp.rejected($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_other'), 'webpush',
          'https://fcm.googleapis.com/fcm/send/bi-web-1', '{"title": "hi"}')$$,
  '23514', 'pgpush: push rejected: a webpush token must be a registered '
           'device (its subscription keys are needed): call '
           'push.register_device first',
  'a Web Push token registered only in another app');

-- Every accepted statement above really queued its rows --------------------------
SELECT is((SELECT count(*)::int FROM push.queue q
           JOIN push.apps a ON a.id = q.app_id WHERE a.name = 'bi_shop'),
          1 + 2 + 2 + 2 + 2 + 2 + 2 + 1 + 1 + 1 + 1 + 1,
          'every accepted push has exactly one queue row');

-- A payload that is small in storage but large as JSON text: the number
-- 1e5000 is a few bytes as jsonb numeric and 5001 digits when sent.
SELECT * FROM pg_temp.rejected_like($$
  INSERT INTO push.pushes (app_id, platform, token, payload)
  VALUES (push.app_id('bi_shop'), 'fcm', 'bi-fcm-token-0000001',
          '{"title": "hi", "data": {"n": 1e5000}}')$$,
  '23514', 'pgpush: push rejected: payload is % bytes for fcm, which allows '
           '4096',
  'a payload whose JSON text is over the limit only once numbers are printed');

SELECT * FROM finish();
ROLLBACK;
