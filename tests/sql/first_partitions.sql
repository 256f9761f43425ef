-- first_partitions.sql: a freshly migrated database already has the daily
-- push.deliveries partitions for today and partitions_ahead_days (3) more
-- (UTC days), so the first dispatcher's outcomes never go to the default
-- partition, and maintenance has nothing to attach on its first run.
BEGIN;
SELECT plan(3);

SELECT ok((SELECT bool_and(EXISTS (
             SELECT 1 FROM pg_inherits i
             WHERE i.inhparent = 'push.deliveries'::regclass
               AND i.inhrelid = to_regclass('push.deliveries_' ||
                 to_char((now() AT TIME ZONE 'UTC')::date + n, 'YYYYMMDD'))))
           FROM generate_series(0, 3) n),
          'today''s partition and the next three days'' exist and are '
          'attached after the migration');
INSERT INTO push.apps (name) VALUES ('fp_shop');
INSERT INTO push.deliveries (push_id, app_id, outcome, provider_reason)
VALUES (0, push.app_id('fp_shop'), 'sent', 'fp-now');
SELECT is((SELECT tableoid::regclass::text FROM push.deliveries
           WHERE provider_reason = 'fp-now'),
          'push.deliveries_' ||
            to_char((now() AT TIME ZONE 'UTC')::date, 'YYYYMMDD'),
          'an outcome written now lands in today''s partition, not the '
          'default one');
SELECT is_empty($$SELECT * FROM push.maintain_partitions()
                  WHERE action = 'created'$$,
                'the first maintenance run has no partition to create');

SELECT * FROM finish();
ROLLBACK;
