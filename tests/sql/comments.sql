-- comments.sql: the schema documents itself. Every table and view of
-- schema push has a COMMENT, and so has every column of the tables users
-- read and write most (push.pushes, push.devices, push.apps,
-- push.deliveries, push.stats_minute).
--
-- Columns exempt as self-evident (keep this list tiny):
--   * id          - an identity primary key: "this row's id"; what the id
--                   is used for is said where it is referenced (e.g.
--                   push.pushes.device_id).
--   * created_at, updated_at - row timestamps kept by a column default and
--                   push.touch_updated_at(); the same in every table.
-- Anything else without a comment is a gap.
BEGIN;
SELECT plan(7);

-- Daily partitions of push.deliveries (deliveries_YYYYMMDD) are made by
-- push.maintain_partitions() and inherit the parent's meaning; they are not
-- separate user-facing tables. (push.deliveries_default is, and is checked.)
SELECT is_empty($$
  SELECT c.relname || ' (' || c.relkind::text || ')'
  FROM pg_class c
  WHERE c.relnamespace = 'push'::regnamespace
    AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    AND NOT (c.relispartition AND c.relname ~ '^deliveries_[0-9]{8}$')
    AND coalesce(obj_description(c.oid, 'pg_class'), '') = ''
  ORDER BY 1$$,
  'every table and view in schema push has a COMMENT');

CREATE FUNCTION pg_temp.uncommented(p_table regclass) RETURNS SETOF text
LANGUAGE sql AS $$
  SELECT a.attname::text FROM pg_attribute a
  WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped
    AND a.attname NOT IN ('id', 'created_at', 'updated_at')
    AND coalesce(col_description(p_table, a.attnum), '') = ''
  ORDER BY a.attnum
$$;

SELECT is_empty($$SELECT * FROM pg_temp.uncommented('push.pushes')$$,
                'every column of push.pushes has a COMMENT');
SELECT is_empty($$SELECT * FROM pg_temp.uncommented('push.devices')$$,
                'every column of push.devices has a COMMENT');
SELECT is_empty($$SELECT * FROM pg_temp.uncommented('push.apps')$$,
                'every column of push.apps has a COMMENT');
SELECT is_empty($$SELECT * FROM pg_temp.uncommented('push.deliveries')$$,
                'every column of push.deliveries has a COMMENT');
SELECT is_empty($$SELECT * FROM pg_temp.uncommented('push.stats_minute')$$,
                'every column of push.stats_minute has a COMMENT');

-- The exemptions stay honest: they cover only columns that exist as
-- described (identity id, timestamptz created_at / updated_at).
SELECT is_empty($$
  SELECT c.relname || '.' || a.attname
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  WHERE c.oid IN ('push.pushes'::regclass, 'push.devices'::regclass,
                  'push.apps'::regclass, 'push.deliveries'::regclass,
                  'push.stats_minute'::regclass)
    AND a.attnum > 0 AND NOT a.attisdropped
    AND ((a.attname = 'id' AND a.attidentity = '')
      OR (a.attname IN ('created_at', 'updated_at')
          AND a.atttypid <> 'timestamptz'::regtype))$$,
  'the exempt columns are identity ids and timestamptz row timestamps');

SELECT * FROM finish();
ROLLBACK;
