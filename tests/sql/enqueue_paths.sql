-- enqueue_paths.sql: the enqueue trigger's two paths agree (migration 0005).
-- A statement of one push with a device or token target takes a short path;
-- any other statement the set-based one. For every case below, the push
-- enqueued alone and the same push enqueued next to another good push must
-- end the same way: the same error (message, code, detail), or the same
-- queue row (platform, device, token, priority, times), the same delivery
-- row and the same count in push.stats_inbox.
BEGIN;
SELECT plan(30);

-- Fixtures --------------------------------------------------------------
INSERT INTO push.apps (name) VALUES ('ep_shop'), ('ep_other');
INSERT INTO push.apps (name, enabled) VALUES ('ep_off', false);
CREATE TEMP TABLE dev (name text PRIMARY KEY, id bigint);
INSERT INTO dev VALUES
  ('fcm', push.register_device(push.app_id('ep_shop'), 'fcm',
     'ep-fcm-token-00000001', 'ep-u1')),
  ('apns', push.register_device(push.app_id('ep_shop'), 'apns',
     repeat('ab', 32), 'ep-u1')),
  ('dead', push.register_device(push.app_id('ep_shop'), 'fcm',
     'ep-fcm-token-00000002', 'ep-u2')),
  ('web', push.register_device(push.app_id('ep_shop'), 'webpush',
     'https://fcm.googleapis.com/fcm/send/ep-web-1',
     p_webpush_p256dh => 'BP256dh', p_webpush_auth => 'authsecret')),
  ('other', push.register_device(push.app_id('ep_other'), 'fcm',
     'ep-fcm-token-00000003')),
  ('filler', push.register_device(push.app_id('ep_shop'), 'fcm',
     'ep-fcm-token-00000099'));
UPDATE push.devices SET invalidated_at = '2026-01-02 03:04:05+00',
  invalid_reason = 'fcm:UNREGISTERED'
WHERE id = (SELECT id FROM dev WHERE name = 'dead');
INSERT INTO push.campaigns (app_id, name, payload_template, state)
VALUES (push.app_id('ep_shop'), 'ep-live', '{}', 'running'),
       (push.app_id('ep_shop'), 'ep-done', '{}', 'done'),
       (push.app_id('ep_other'), 'ep-theirs', '{}', 'running');

-- try(sql): what the statement did, then undone: its error, or the queue,
-- delivery and inbox rows of its pushes (those of the filler device left
-- out), times relative to the push's created_at.
CREATE FUNCTION pg_temp.try(p_sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_max    bigint := (SELECT coalesce(max(id), 0) FROM push.pushes);
  v_filler bigint := (SELECT id FROM dev WHERE name = 'filler');
  v_out    text;
  v_state  text;
  v_msg    text;
  v_detail text;
BEGIN
  BEGIN
    EXECUTE p_sql;
    SELECT concat_ws(' | ',
      (SELECT string_agg(format('queue %s dev=%s token=%s %s nb=%s exp=%s',
                                q.platform, q.device_id, q.token, q.priority,
                                q.not_before - p.created_at,
                                q.expires_at - p.created_at), '; ')
       FROM push.queue q JOIN push.pushes p ON p.id = q.push_id
       WHERE p.id > v_max AND q.device_id IS DISTINCT FROM v_filler),
      (SELECT string_agg(format('delivery %s %s dev=%s %s', d.outcome,
                                d.platform, d.device_id, d.provider_reason),
                         '; ')
       FROM push.deliveries d
       WHERE d.push_id > v_max AND d.device_id IS DISTINCT FROM v_filler),
      (SELECT string_agg(format('inbox %s %s x%s', i.outcome, i.platform,
                                i.count), '; ')
       FROM push.stats_inbox i
       WHERE i.app_id IN (push.app_id('ep_shop'), push.app_id('ep_other'))))
    INTO v_out;
    RAISE EXCEPTION 'undo' USING ERRCODE = 'P0099';
  EXCEPTION
    WHEN SQLSTATE 'P0099' THEN
      RETURN coalesce(v_out, '(nothing)');
    WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE,
        v_msg = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
      RETURN format('error %s: %s (%s)', v_state, v_msg,
                    regexp_replace(v_detail, 'push [0-9]+', 'push N'));
  END;
END $$;

-- The cases: one push each, as the VALUES of the column list below.
CREATE TEMP TABLE cases (n serial, what text, push text);
INSERT INTO cases (what, push) VALUES
  ('device target', $$push.app_id('ep_shop'), (SELECT id FROM dev WHERE
     name = 'fcm'), NULL, NULL, '{"title": "hi"}', 'normal', NULL, NULL,
     NULL, NULL, NULL, false$$),
  ('device target, high, ttl, send_after, collapse key', $$push.app_id(
     'ep_shop'), (SELECT id FROM dev WHERE name = 'apns'), NULL, NULL,
     '{"title": "hi", "badge": 3}', 'high', 'k1', 600, NULL,
     now() + interval '1 hour', NULL, false$$),
  ('device target with its platform', $$push.app_id('ep_shop'), (SELECT id
     FROM dev WHERE name = 'fcm'), 'fcm', NULL, '{"body": "b"}', 'normal',
     NULL, NULL, now() + interval '2 hours', NULL, NULL, false$$),
  ('device target in a running campaign', $$push.app_id('ep_shop'),
     (SELECT id FROM dev WHERE name = 'fcm'), NULL, NULL, '{"title": "c"}',
     'normal', NULL, NULL, NULL, NULL, (SELECT id FROM push.campaigns WHERE
     name = 'ep-live'), false$$),
  ('registered token', $$push.app_id('ep_shop'), NULL, 'fcm',
     'ep-fcm-token-00000001', '{"title": "hi"}', 'normal', NULL, NULL, NULL,
     NULL, NULL, false$$),
  ('unregistered token', $$push.app_id('ep_shop'), NULL, 'fcm',
     'ep-fcm-token-00000077', '{"title": "hi"}', 'normal', NULL, 0, NULL,
     NULL, NULL, false$$),
  ('registered webpush token', $$push.app_id('ep_shop'), NULL, 'webpush',
     'https://fcm.googleapis.com/fcm/send/ep-web-1', '{"title": "hi"}',
     'normal', NULL, NULL, NULL, NULL, NULL, false$$),
  ('invalidated device', $$push.app_id('ep_shop'), (SELECT id FROM dev
     WHERE name = 'dead'), NULL, NULL, '{"title": "hi"}', 'normal', NULL,
     NULL, NULL, NULL, NULL, false$$),
  ('token of an invalidated device', $$push.app_id('ep_shop'), NULL, 'fcm',
     'ep-fcm-token-00000002', '{"title": "hi"}', 'normal', NULL, NULL, NULL,
     NULL, NULL, false$$),
  ('unregistered webpush token', $$push.app_id('ep_shop'), NULL, 'webpush',
     'https://fcm.googleapis.com/fcm/send/ep-web-9', '{"title": "hi"}',
     'normal', NULL, NULL, NULL, NULL, NULL, false$$),
  ('device of another app', $$push.app_id('ep_shop'), (SELECT id FROM dev
     WHERE name = 'other'), NULL, NULL, '{"title": "hi"}', 'normal', NULL,
     NULL, NULL, NULL, NULL, false$$),
  ('device of another platform', $$push.app_id('ep_shop'), (SELECT id FROM
     dev WHERE name = 'fcm'), 'apns', NULL, '{"title": "hi"}', 'normal',
     NULL, NULL, NULL, NULL, NULL, false$$),
  ('disabled app', $$push.app_id('ep_off'), NULL, 'fcm',
     'ep-fcm-token-00000001', '{"title": "hi"}', 'normal', NULL, NULL, NULL,
     NULL, NULL, false$$),
  ('unknown app', $$2147483000, NULL, 'fcm', 'ep-fcm-token-00000001',
     '{"title": "hi"}', 'normal', NULL, NULL, NULL, NULL, NULL, false$$),
  ('device and token', $$push.app_id('ep_shop'), (SELECT id FROM dev WHERE
     name = 'fcm'), 'fcm', 'ep-fcm-token-00000001', '{"title": "hi"}',
     'normal', NULL, NULL, NULL, NULL, NULL, false$$),
  ('token without platform', $$push.app_id('ep_shop'), NULL, NULL,
     'ep-fcm-token-00000001', '{"title": "hi"}', 'normal', NULL, NULL, NULL,
     NULL, NULL, false$$),
  ('bad fcm token', $$push.app_id('ep_shop'), NULL, 'fcm', 'short',
     '{"title": "hi"}', 'normal', NULL, NULL, NULL, NULL, NULL, false$$),
  ('negative ttl', $$push.app_id('ep_shop'), (SELECT id FROM dev WHERE name
     = 'fcm'), NULL, NULL, '{"title": "hi"}', 'normal', NULL, -1, NULL, NULL,
     NULL, false$$),
  ('ttl and expires_at', $$push.app_id('ep_shop'), (SELECT id FROM dev
     WHERE name = 'fcm'), NULL, NULL, '{"title": "hi"}', 'normal', NULL, 60,
     now() + interval '1 hour', NULL, NULL, false$$),
  ('payload not an object', $$push.app_id('ep_shop'), (SELECT id FROM dev
     WHERE name = 'fcm'), NULL, NULL, '"hi"', 'normal', NULL, NULL, NULL,
     NULL, NULL, false$$),
  ('empty payload', $$push.app_id('ep_shop'), (SELECT id FROM dev WHERE name
     = 'fcm'), NULL, NULL, '{}', 'normal', NULL, NULL, NULL, NULL, NULL,
     false$$),
  ('payload too big for the device''s platform', $$push.app_id('ep_shop'),
     (SELECT id FROM dev WHERE name = 'apns'), NULL, NULL,
     jsonb_build_object('title', repeat('x', 4100)), 'normal', NULL, NULL,
     NULL, NULL, NULL, false$$),
  ('payload too big for MPNS, fine without the override', $$push.app_id(
     'ep_shop'), NULL, 'mpns', 'https://s.notify.live.net/u/1/db3/H2Lo',
     jsonb_build_object('title', 'x', 'mpns', jsonb_build_object('t',
     repeat('y', 3100))), 'normal', NULL, NULL, NULL, NULL, NULL, false$$),
  ('APNs collapse key over 64 bytes', $$push.app_id('ep_shop'), (SELECT id
     FROM dev WHERE name = 'apns'), NULL, NULL, '{"title": "hi"}', 'normal',
     repeat('k', 65), NULL, NULL, NULL, NULL, false$$),
  ('unknown campaign', $$push.app_id('ep_shop'), (SELECT id FROM dev WHERE
     name = 'fcm'), NULL, NULL, '{"title": "hi"}', 'normal', NULL, NULL,
     NULL, NULL, 2147483000, false$$),
  ('finished campaign', $$push.app_id('ep_shop'), (SELECT id FROM dev WHERE
     name = 'fcm'), NULL, NULL, '{"title": "hi"}', 'normal', NULL, NULL,
     NULL, NULL, (SELECT id FROM push.campaigns WHERE name = 'ep-done'),
     false$$),
  ('another app''s campaign', $$push.app_id('ep_shop'), (SELECT id FROM dev
     WHERE name = 'fcm'), NULL, NULL, '{"title": "hi"}', 'normal', NULL,
     NULL, NULL, NULL, (SELECT id FROM push.campaigns WHERE
     name = 'ep-theirs'), false$$),
  ('newest_device_only without a user', $$push.app_id('ep_shop'), (SELECT id
     FROM dev WHERE name = 'fcm'), NULL, NULL, '{"title": "hi"}', 'normal',
     NULL, NULL, NULL, NULL, NULL, true$$);

CREATE FUNCTION pg_temp.insert_sql(p_values text) RETURNS text
LANGUAGE sql AS $$
  SELECT 'INSERT INTO push.pushes (app_id, device_id, platform, token, '
         'payload, priority, collapse_key, ttl, expires_at, send_after, '
         'campaign_id, newest_device_only) VALUES ' || p_values
$$;

SELECT is(pg_temp.try(pg_temp.insert_sql('(' || c.push || ')')),
          pg_temp.try(pg_temp.insert_sql('(' || c.push || '), ('
            || 'push.app_id(''ep_shop''), (SELECT id FROM dev WHERE name = '
            || '''filler''), NULL, NULL, ''{"title": "filler"}'', '
            || '''normal'', NULL, NULL, NULL, NULL, NULL, false)')),
          'alone and in a set: ' || c.what)
FROM cases c ORDER BY c.n;

-- The cases are what they say: both kinds of ending are covered.
SELECT ok(pg_temp.try(pg_temp.insert_sql('(' || push || ')')) LIKE
          'queue fcm dev=% normal nb=00:00:00 exp=',
          'a device push is queued as it was before the short path')
FROM cases WHERE what = 'device target';
SELECT ok(pg_temp.try(pg_temp.insert_sql('(' || push || ')')) LIKE
          'delivery invalid_token fcm dev=% device invalidated at % | '
          'inbox invalid_token fcm x1',
          'an invalidated device is finished and counted, not queued')
FROM cases WHERE what = 'invalidated device';

SELECT * FROM finish();
ROLLBACK;
