-- header_values.sql: every value of a push that a sender puts into an
-- HTTP header or a URL is checked at INSERT, with an error naming the
-- field, on both paths of the enqueue trigger (a one-row statement and a
-- set-based one), and payloads nest at most 16 levels of objects and
-- arrays (the dispatcher parses that deep and no deeper).
--
-- The values, by platform:
--   collapse_key         APNs apns-collapse-id, FCM's APNs headers, WNS
--                        X-WNS-Tag: no control character, no space at
--                        either end (all platforms)
--   payload.apns.push_type  apns-push-type (and the apns-topic suffix)
--   payload.apns.priority   apns-priority
--   payload.wns.tag         X-WNS-Tag
--   payload.wns.cache_policy X-WNS-Cache-Policy
--   token                APNs: the path /3/device/<hex>; WNS, MPNS, Web
--                        Push: the whole URL (visible ASCII only), also
--                        for push.register_device()
BEGIN;
SELECT plan(46);

INSERT INTO push.apps (name) VALUES ('hv_shop');
DO $$ BEGIN PERFORM push.register_device(push.app_id('hv_shop'), 'apns',
  repeat('ab', 32), 'hv-user'); END $$;

-- one(columns, values): the push alone in its statement, the one-row
-- path; two(...): the push twice in one statement, the set-based path.
CREATE FUNCTION pg_temp.one(p_cols text, p_vals text) RETURNS text
LANGUAGE sql AS $$
  SELECT format('INSERT INTO push.pushes (app_id, %s) VALUES '
                '(push.app_id(''hv_shop''), %s)', p_cols, p_vals)
$$;
CREATE FUNCTION pg_temp.two(p_cols text, p_vals text) RETURNS text
LANGUAGE sql AS $$
  SELECT format('INSERT INTO push.pushes (app_id, %s) SELECT '
                'push.app_id(''hv_shop''), %s FROM generate_series(1, 2)',
                p_cols, p_vals)
$$;
-- both(cols, vals, message, what): rejected with this message both ways.
CREATE FUNCTION pg_temp.both(p_cols text, p_vals text, p_msg text,
                             p_what text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
BEGIN
  RETURN NEXT throws_ok(pg_temp.one(p_cols, p_vals), '23514',
                        'pgpush: push rejected: ' || p_msg,
                        p_what || ' (one row)');
  RETURN NEXT throws_ok(pg_temp.two(p_cols, p_vals), '23514',
                        'pgpush: push rejected: ' || p_msg,
                        p_what || ' (set)');
END $$;

CREATE TEMP TABLE tok AS SELECT repeat('ab', 32) AS apns,
  'https://db5.notify.windows.com/?token=hv' AS wns,
  'https://s.notify.live.net/u/01.00/hv' AS mpns;

-- collapse_key ------------------------------------------------------------
SELECT pg_temp.both('platform, token, payload, collapse_key',
  format('''apns'', %L, ''{"title":"t"}'', E''ck\r\nx-injected: 1''',
         (SELECT apns FROM tok)),
  'collapse_key must not contain control characters (it is sent as a '
  'header)', 'collapse_key with CR LF, APNs token target');
SELECT pg_temp.both('user_id, payload, collapse_key',
  '''hv-user'', ''{"title":"t"}'', E''ck\nx''',
  'collapse_key must not contain control characters (it is sent as a '
  'header)', 'collapse_key with LF, user target');
SELECT pg_temp.both('platform, token, payload, collapse_key',
  '''fcm'', ''hv-fcm-token-000001'', ''{"title":"t"}'', E''a\tb''',
  'collapse_key must not contain control characters (it is sent as a '
  'header)', 'collapse_key with a tab, FCM');
SELECT pg_temp.both('platform, token, payload, collapse_key',
  format('''wns'', %L, ''{"title":"t"}'', E''ck\x7f''', (SELECT wns FROM tok)),
  'collapse_key must not contain control characters (it is sent as a '
  'header)', 'collapse_key with DEL, WNS');
SELECT pg_temp.both('platform, token, payload, collapse_key',
  format('''mpns'', %L, ''{"title":"t"}'', '' ck''', (SELECT mpns FROM tok)),
  'collapse_key must not begin or end with a space (it is sent as a '
  'header)', 'collapse_key with a leading space, MPNS');
SELECT pg_temp.both('device_id, payload, collapse_key',
  '(SELECT id FROM push.devices WHERE user_id = ''hv-user''), '
  '''{"title":"t"}'', ''ck ''',
  'collapse_key must not begin or end with a space (it is sent as a '
  'header)', 'collapse_key with a trailing space, device target');
SELECT lives_ok(pg_temp.one('user_id, payload, collapse_key',
  $$'hv-user', '{"title":"t"}', 'cart 17 grüße'$$),
  'a collapse key with inner spaces and UTF-8 is accepted');

-- override fields sent as headers -----------------------------------------
SELECT pg_temp.both('user_id, payload',
  $$'hv-user', '{"title":"t","apns":{"push_type":"alert\r\nx-injected: 1"}}'$$,
  'payload.apns.push_type must be one of alert, background, complication, '
  'controls, fileprovider, liveactivity, location, mdm, pushtotalk, voip, '
  'widgets', 'apns.push_type with CR LF');
SELECT pg_temp.both('user_id, payload',
  $$'hv-user', '{"title":"t","apns":{"push_type":"bogus"}}'$$,
  'payload.apns.push_type must be one of alert, background, complication, '
  'controls, fileprovider, liveactivity, location, mdm, pushtotalk, voip, '
  'widgets', 'apns.push_type unknown');
SELECT pg_temp.both('user_id, payload',
  $$'hv-user', '{"title":"t","apns":{"priority":"10\r\nx: 1"}}'$$,
  'payload.apns.priority must be 10, 5 or 1', 'apns.priority as a string');
SELECT pg_temp.both('user_id, payload',
  $$'hv-user', '{"title":"t","apns":{"priority":7}}'$$,
  'payload.apns.priority must be 10, 5 or 1', 'apns.priority 7');
SELECT pg_temp.both('user_id, payload',
  $$'hv-user', '{"title":"t","wns":{"tag":"a\r\nX-Injected: 1"}}'$$,
  'payload.wns.tag must be 1 to 16 letters or digits', 'wns.tag with CR LF');
SELECT pg_temp.both('user_id, payload',
  $$'hv-user', '{"title":"t","wns":{"tag":"seventeen-chars-x"}}'$$,
  'payload.wns.tag must be 1 to 16 letters or digits', 'wns.tag too long');
SELECT pg_temp.both('user_id, payload',
  $$'hv-user', '{"title":"t","wns":{"cache_policy":"cache\r\nX: 1"}}'$$,
  'payload.wns.cache_policy must be "cache" or "no-cache"',
  'wns.cache_policy with CR LF');
SELECT lives_ok(pg_temp.two('user_id, payload',
  $$'hv-user', '{"title":"t","apns":{"push_type":"voip","priority":5},
    "wns":{"tag":"Cart17","cache_policy":"no-cache"}}'$$),
  'valid header overrides are accepted');
SELECT lives_ok(pg_temp.one('user_id, payload',
  $$'hv-user', '{"title":"t","apns":{"push_type":null,"priority":null}}'$$),
  'a null override field is no field');

-- tokens and channel URLs -------------------------------------------------
SELECT pg_temp.both('platform, token, payload',
  $$'apns', 'abcd/../../x', '{"title":"t"}'$$,
  'an APNs device token is 64 or more hexadecimal digits',
  'an APNs token that is not hex (it is the URL path)');
SELECT pg_temp.both('platform, token, payload',
  format('''wns'', %L, ''{"title":"t"}''', (SELECT wns FROM tok) || E'\x01'),
  'a WNS channel must be an https URL', 'a WNS channel with a control char');
SELECT pg_temp.both('platform, token, payload',
  format('''mpns'', %L, ''{"title":"t"}''', (SELECT mpns FROM tok) || E'\x7f'),
  'an MPNS channel must be an https URL', 'an MPNS channel with DEL');
SELECT pg_temp.both('platform, token, payload',
  format('''wns'', %L, ''{"title":"t"}''', (SELECT wns FROM tok) || 'ü'),
  'a WNS channel must be an https URL', 'a WNS channel with raw UTF-8');
SELECT throws_ok(format($$SELECT push.register_device(push.app_id('hv_shop'),
    'webpush', %L, p_webpush_p256dh => 'k', p_webpush_auth => 'a')$$,
    'https://push.example.net/sub/' || E'\x1b' || '[0m'), '23514',
  'pgpush: invalid webpush device token: a Web Push endpoint must be an '
  'https URL', 'a Web Push endpoint with ESC is not registered');

-- depth -------------------------------------------------------------------
-- nest(n): a payload of n levels: {"title":"t","data":{"a":{"a":...1}}}.
CREATE FUNCTION pg_temp.nest(n integer) RETURNS text LANGUAGE sql AS $$
  SELECT '{"title":"t","data":' || repeat('{"a":', n - 1) || '1'
         || repeat('}', n - 1) || '}'
$$;
SELECT lives_ok(pg_temp.one('user_id, payload',
                            format('''hv-user'', %L', pg_temp.nest(16))),
                'a payload nested 16 levels is accepted (one row)');
SELECT lives_ok(pg_temp.two('user_id, payload',
                            format('''hv-user'', %L', pg_temp.nest(16))),
                'a payload nested 16 levels is accepted (set)');
SELECT pg_temp.both('user_id, payload',
  format('''hv-user'', %L', pg_temp.nest(17)),
  'payload nests deeper than 16 levels of objects and arrays',
  'a payload nested 17 levels');
SELECT pg_temp.both('user_id, payload',
  format('''hv-user'', %L', '{"title":"t","apns":{"x":' ||
         repeat('[', 15) || repeat(']', 15) || '}}'),
  'payload nests deeper than 16 levels of objects and arrays',
  'an override nested with arrays to 17 levels');
SELECT pg_temp.both('user_id, payload',
  format('''hv-user'', %L', pg_temp.nest(40)),
  'payload nests deeper than 16 levels of objects and arrays',
  'a payload nested 40 levels (past json-c''s default of 32)');

SELECT * FROM finish();
ROLLBACK;
