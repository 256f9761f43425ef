-- purge_deliveries.sql - drop delivery history older than N days: runs
-- push.maintain_partitions(days), which drops the daily push.deliveries
-- partitions of UTC days before today - days (today and the `days` days
-- before it are kept), deletes rows older than that cut from the default
-- partition, from push.pushes (unless still queued) and from
-- push.idempotency_keys, and creates the partitions of today
-- and the coming days (partitions_ahead_days) if missing. Serialised with
-- the dispatchers' own maintenance by an advisory lock inside the function.
-- Not per app: history of all apps goes.
--
-- Variables:
--   days  required  days of history to keep, a whole number >= 1 (the
--                   regular retention is push.settings
--                   history_retention_days; this does not change it)
--
-- Prints one row per action (created / dropped / deleted) and a summary.
--
-- Example:
--   psql -v days=14 -f admin-sql/purge_deliveries.sql

\set ON_ERROR_STOP on
\set QUIET on

\if :{?days}
\else
  DO $$ BEGIN RAISE EXCEPTION 'purge_deliveries.sql: variable days is required'
    USING HINT = 'psql -v days=N -f admin-sql/purge_deliveries.sql (keeps '
                 'the last N days of delivery history)';
  END $$;
\endif

SELECT :'days' ~ '^\s*[0-9]{1,6}\s*$' AND :'days' !~ '^\s*0+\s*$' AS days_ok
\gset
\if :days_ok
\else
  DO $$ BEGIN RAISE EXCEPTION
    'purge_deliveries.sql: days must be a whole number of days, 1 or more';
  END $$;
\endif

-- Runs the function once; prints what it did, then a summary row.
WITH done AS MATERIALIZED (
  SELECT m.n, m.action, m.object
  FROM push.maintain_partitions(:'days'::integer)
       WITH ORDINALITY AS m(action, object, n)
)
SELECT action, object
FROM (
  SELECT n, action, object FROM done
  UNION ALL
  SELECT 9223372036854775807, 'summary',
    CASE WHEN count(*) = 0 THEN
      format('nothing to do: no history older than %s days', :'days'::integer)
    ELSE
      format('kept %s days: %s partitions dropped, %s created, %s deletes',
        :'days'::integer,
        count(*) FILTER (WHERE action = 'dropped'),
        count(*) FILTER (WHERE action = 'created'),
        count(*) FILTER (WHERE action = 'deleted'))
    END
  FROM done
) s
ORDER BY n;
