-- idempotency.sql: a push with an idempotency_key is enqueued once per
-- (app, key); repeating the INSERT is a no-op, not a duplicate push.
BEGIN;
SELECT plan(19);

INSERT INTO push.apps (name) VALUES ('id_shop'), ('id_other');
DO $$ BEGIN
  PERFORM push.register_device(push.app_id('id_shop'), 'fcm',
                               'id-shop-bob-fcm-01', 'bob');
  PERFORM push.register_device(push.app_id('id_shop'), 'fcm',
                               'id-shop-bob-fcm-02', 'bob');
  PERFORM push.register_device(push.app_id('id_other'), 'fcm',
                               'id-other-bob-fcm-1', 'bob');
END $$;

-- rows(sql): the row count the statement reports (its command tag).
CREATE FUNCTION pg_temp.rows(p_sql text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  EXECUTE p_sql;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
CREATE FUNCTION pg_temp.pushes(p_app text, p_key text) RETURNS integer
LANGUAGE sql AS $$
  SELECT count(*)::int FROM push.pushes
  WHERE app_id = push.app_id(p_app) AND idempotency_key = p_key
$$;
CREATE FUNCTION pg_temp.queued(p_app text, p_key text) RETURNS integer
LANGUAGE sql AS $$
  SELECT count(*)::int FROM push.queue q JOIN push.pushes p ON p.id = q.push_id
  WHERE p.app_id = push.app_id(p_app) AND p.idempotency_key = p_key
$$;

-- Same (app, key) twice ------------------------------------------------------
SELECT is(pg_temp.rows($$
  INSERT INTO push.pushes (app_id, user_id, payload, idempotency_key)
  VALUES (push.app_id('id_shop'), 'bob', '{"title": "first"}', 'order-1')$$),
  1, 'the first insert with a key enqueues the push (INSERT 0 1)');
SELECT is(pg_temp.queued('id_shop', 'order-1'), 2,
          '... fanned out to the user''s two devices');
SELECT is(pg_temp.rows($$
  INSERT INTO push.pushes (app_id, user_id, payload, idempotency_key)
  VALUES (push.app_id('id_shop'), 'bob', '{"title": "first"}', 'order-1')$$),
  0, 'the same insert again is a no-op (INSERT 0 0)');
SELECT is(pg_temp.rows($$
  INSERT INTO push.pushes (app_id, user_id, payload, idempotency_key)
  VALUES (push.app_id('id_shop'), 'bob', '{"title": "retry"}', 'order-1')$$),
  0, 'a different push with the same key is a no-op too: the key decides');
SELECT is(pg_temp.pushes('id_shop', 'order-1'), 1, 'one push in push.pushes');
SELECT is(pg_temp.queued('id_shop', 'order-1'), 2,
          'one set of queue rows (two devices), not two');
SELECT is((SELECT payload ->> 'title' FROM push.pushes
           WHERE idempotency_key = 'order-1'), 'first',
          'the first push is the one kept');
SELECT is((SELECT k.push_id FROM push.idempotency_keys k
           WHERE k.app_id = push.app_id('id_shop') AND k.key = 'order-1'),
          (SELECT id FROM push.pushes WHERE idempotency_key = 'order-1'),
          'push.idempotency_keys remembers which push the key created');
SELECT is((SELECT count(*)::int FROM push.deliveries d
           JOIN push.pushes p ON p.id = d.push_id
           WHERE p.idempotency_key = 'order-1'), 0,
          'a skipped duplicate leaves no delivery row either');

-- The same key in another app is another key ---------------------------------
SELECT is(pg_temp.rows($$
  INSERT INTO push.pushes (app_id, user_id, payload, idempotency_key)
  VALUES (push.app_id('id_other'), 'bob', '{"title": "first"}', 'order-1')$$),
  1, 'the same key in another app enqueues that app''s push');
SELECT is(pg_temp.queued('id_other', 'order-1'), 1,
          '... to that app''s device');
SELECT is(pg_temp.pushes('id_shop', 'order-1'), 1,
          '... and the first app still has its one push');

-- Two rows with one key in ONE statement ------------------------------------------
SELECT is(pg_temp.rows($$
  INSERT INTO push.pushes (app_id, user_id, payload, idempotency_key)
  VALUES (push.app_id('id_shop'), 'bob', '{"title": "a"}', 'order-2'),
         (push.app_id('id_shop'), 'bob', '{"title": "b"}', 'order-2')$$),
  1, 'two rows with the same key in one statement insert one push');
SELECT is(pg_temp.queued('id_shop', 'order-2'), 2,
          '... and one set of queue rows');
SELECT is(pg_temp.rows($$
  INSERT INTO push.pushes (app_id, user_id, payload, idempotency_key)
  SELECT push.app_id('id_shop'), 'bob', '{"title": "bulk"}',
         'order-3-' || (i % 10)
  FROM generate_series(1, 100) i$$),
  10, 'a bulk insert of 100 rows over 10 keys enqueues 10 pushes');

-- A mix: one repeated key and one new key ---------------------------------------
SELECT is(pg_temp.rows($$
  INSERT INTO push.pushes (app_id, user_id, payload, idempotency_key)
  VALUES (push.app_id('id_shop'), 'bob', '{"title": "again"}', 'order-1'),
         (push.app_id('id_shop'), 'bob', '{"title": "new"}', 'order-4')$$),
  1, 'in one statement, a repeated key is skipped and a new one enqueued');
SELECT is(pg_temp.queued('id_shop', 'order-4'), 2, '... with its queue rows');

-- No key: no de-duplication ------------------------------------------------------
SELECT is(pg_temp.rows($$
  INSERT INTO push.pushes (app_id, user_id, payload)
  VALUES (push.app_id('id_shop'), 'bob', '{"title": "no key"}'),
         (push.app_id('id_shop'), 'bob', '{"title": "no key"}')$$),
  2, 'pushes without a key are never de-duplicated');

SELECT throws_ok(format($$
  INSERT INTO push.pushes (app_id, user_id, payload, idempotency_key)
  VALUES (push.app_id('id_shop'), 'bob', '{"title": "long"}', %L)$$,
  repeat('k', 257)),
  '23514', 'pgpush: push rejected: idempotency_key is longer than 256 bytes',
  'an idempotency key over 256 bytes is rejected');

SELECT * FROM finish();
ROLLBACK;
