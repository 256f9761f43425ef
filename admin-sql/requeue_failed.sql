-- requeue_failed.sql - put an app's permanently failed deliveries back into
-- push.queue, e.g. after fixing a credential that made them fail.
--
-- Requeued: every (push, device) of the app - or (push, token) for a token
-- target with no registered device - that has a `failed` delivery finished
-- at or after `since` AND whose latest delivery is that failure. One queue
-- row each, with attempts 0, not_before now() and enqueued_at now() (so the
-- app's max_retry_age counts from the requeue); the push's own expiry still
-- applies. Skipped: (push, device) pairs already in the queue, invalidated or
-- deleted devices, pushes past their expiry, pushes of cancelled campaigns,
-- and pushes already purged from push.pushes. A registered device's row
-- names the device (its token is read when claimed); an unregistered token
-- target's row carries push.pushes.token.
--
-- Safe to run twice, or concurrently: runs for the same app are serialised
-- by an advisory lock, and the second finds the first's rows queued. A push
-- that fails again after the requeue is requeued again by the next run.
--
-- Variables:
--   app    required  the app's name (push.apps.name)
--   since  optional  how far back to look: either an interval back from now
--                    ('6 hours', '2 days') or a timestamp starting with the
--                    date ('2026-11-20', '2026-11-20 08:00+00'); default
--                    '24 hours'
--
-- Prints the app, the cut-off time and how many rows were queued, and sends
-- NOTIFY pgpush_enqueue with the app's id as payload when any were.
--
-- Example:
--   psql -v app=shop -v since='6 hours' -f admin-sql/requeue_failed.sql

\set ON_ERROR_STOP on
\set QUIET on

\if :{?app}
\else
  DO $$ BEGIN RAISE EXCEPTION 'requeue_failed.sql: variable app is required'
    USING HINT = 'psql -v app=NAME [-v since=''6 hours''] '
                 '-f admin-sql/requeue_failed.sql';
  END $$;
\endif
\if :{?since}
\else
  \set since '24 hours'
\endif

-- Fails with "pgpush: unknown app" for a name that is not in push.apps.
SELECT push.app_id(:'app') AS app_id,
       :'since' ~ '^\s*[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}' AS since_is_timestamp
\gset

-- Two statements, not one CASE: a CASE would cast the constant to both
-- types and fail on one of them.
\if :since_is_timestamp
  SELECT :'since'::timestamptz AS cutoff \gset
\else
  SELECT now() - :'since'::interval AS cutoff \gset
\endif
SELECT :'cutoff'::timestamptz <= now() AS cutoff_ok \gset
\if :cutoff_ok
\else
  DO $$ BEGIN RAISE EXCEPTION 'requeue_failed.sql: since must be in the past'
    USING HINT = 'an interval back from now (''6 hours'', not ''6 hours ago'') '
                 'or a past timestamp';
  END $$;
\endif

BEGIN;
-- One requeue per app at a time: the second waits, then (a new snapshot
-- per statement) sees the first one's queue rows and skips them.
SELECT pg_advisory_xact_lock(hashtext('pgpush.requeue_failed'),
                             :'app_id'::integer) AS locked \gset

WITH candidates AS (
  -- (push, device) pairs with a failure in the window
  SELECT DISTINCT d.push_id, d.device_id
  FROM push.deliveries d
  WHERE d.app_id = :'app_id'::integer
    AND d.outcome = 'failed'
    AND d.finished_at >= :'cutoff'::timestamptz
), latest AS (
  -- the latest delivery of each; on a tie a non-failure wins (no requeue)
  SELECT DISTINCT ON (d.push_id, d.device_id)
         d.push_id, d.device_id, d.outcome
  FROM push.deliveries d
  JOIN candidates c
    ON c.push_id = d.push_id
   AND c.device_id IS NOT DISTINCT FROM d.device_id
  WHERE d.app_id = :'app_id'::integer
  ORDER BY d.push_id, d.device_id, d.finished_at DESC, d.attempt DESC,
           d.outcome = 'failed'
), queued AS (
  INSERT INTO push.queue (push_id, app_id, platform, device_id, token,
    priority, not_before, expires_at, enqueued_at, attempts)
  SELECT p.id, p.app_id, coalesce(dv.platform, p.platform), l.device_id,
         CASE WHEN l.device_id IS NULL THEN p.token END, p.priority, now(),
         x.expires_at,
         now(), 0
  FROM latest l
  JOIN push.pushes p ON p.id = l.push_id AND p.app_id = :'app_id'::integer
  LEFT JOIN push.devices dv ON dv.id = l.device_id AND dv.app_id = p.app_id
  LEFT JOIN push.campaigns c ON c.id = p.campaign_id
  CROSS JOIN LATERAL (SELECT coalesce(p.expires_at,
    p.created_at + make_interval(secs => p.ttl)) AS expires_at) x
  WHERE l.outcome = 'failed'
    AND CASE WHEN l.device_id IS NULL
             THEN p.token IS NOT NULL AND p.platform IS NOT NULL
             ELSE dv.id IS NOT NULL AND dv.invalidated_at IS NULL END
    AND (x.expires_at IS NULL OR x.expires_at > now())
    AND c.state IS DISTINCT FROM 'cancelled'
    AND NOT EXISTS (
      SELECT 1 FROM push.queue q
      WHERE q.push_id = l.push_id
        AND q.device_id IS NOT DISTINCT FROM l.device_id)
  RETURNING 1
)
SELECT count(*) AS requeued, count(*) > 0 AS any_requeued FROM queued \gset

\if :any_requeued
  -- Delivered at COMMIT, like the enqueue trigger's.
  NOTIFY pgpush_enqueue, :'app_id';
\endif
COMMIT;

SELECT :'app' AS app, :'cutoff'::timestamptz AS since,
       :'requeued'::bigint AS requeued;
