-- app_health.sql - a read-only health report of one app:
--   1. state: tier, enabled, paused, ban (banned now?, until, reason, by)
--   2. devices per platform: active and invalidated
--   3. deliveries in the last 24 hours by platform and outcome
--   4. top 10 failure reasons in the last 24 hours (every outcome but sent
--      and cancelled, by outcome and provider reason)
--   5. devices invalidated in the last 24 hours, by reason
--   6. queue per platform: depth, rows due now, rows leased by a
--      dispatcher, and the age of the oldest queued push
-- It changes nothing and takes no locks beyond reading.
--
-- Variables:
--   app  required  the app's name (push.apps.name)
--
-- Example:
--   psql -v app=shop -f admin-sql/app_health.sql
--   (add -A -F'|' for output that is easy to grep)

\set ON_ERROR_STOP on
\set QUIET on

\if :{?app}
\else
  DO $$ BEGIN RAISE EXCEPTION 'app_health.sql: variable app is required'
    USING HINT = 'psql -v app=NAME -f admin-sql/app_health.sql';
  END $$;
\endif

-- Fails with "pgpush: unknown app" for a name that is not in push.apps.
SELECT push.app_id(:'app') AS app_id \gset

-- All sections see the same moment.
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;

\echo '== state'
SELECT a.id, a.name, a.tier, a.enabled, a.paused,
       coalesce(a.banned_until > now(), false) AS banned,
       a.banned_until, a.ban_reason, a.banned_by
FROM push.apps a
WHERE a.id = :'app_id'::integer;

\echo '== devices per platform'
SELECT d.platform,
       count(*) FILTER (WHERE d.invalidated_at IS NULL) AS active,
       count(*) FILTER (WHERE d.invalidated_at IS NOT NULL) AS invalidated
FROM push.devices d
WHERE d.app_id = :'app_id'::integer
GROUP BY d.platform
ORDER BY d.platform;

\echo '== deliveries last 24 hours by platform and outcome'
SELECT d.platform, d.outcome, count(*) AS deliveries
FROM push.deliveries d
WHERE d.app_id = :'app_id'::integer
  AND d.finished_at >= now() - interval '24 hours'
GROUP BY d.platform, d.outcome
ORDER BY d.platform NULLS LAST, d.outcome;

\echo '== top failure reasons last 24 hours'
SELECT d.outcome, coalesce(d.provider_reason, '(none)') AS reason,
       count(*) AS deliveries
FROM push.deliveries d
WHERE d.app_id = :'app_id'::integer
  AND d.finished_at >= now() - interval '24 hours'
  AND d.outcome NOT IN ('sent', 'cancelled')
GROUP BY d.outcome, d.provider_reason
ORDER BY count(*) DESC, d.outcome, reason
LIMIT 10;

\echo '== invalidations last 24 hours by reason'
SELECT coalesce(d.invalid_reason, '(none)') AS reason, count(*) AS devices
FROM push.devices d
WHERE d.app_id = :'app_id'::integer
  AND d.invalidated_at >= now() - interval '24 hours'
GROUP BY d.invalid_reason
ORDER BY count(*) DESC, reason;

\echo '== queue per platform'
SELECT q.platform, count(*) AS queued,
       count(*) FILTER (WHERE q.not_before <= now()) AS due,
       count(*) FILTER (WHERE q.lease_expires_at > now()) AS leased,
       date_trunc('second', now() - min(q.enqueued_at)) AS oldest_age
FROM push.queue q
WHERE q.app_id = :'app_id'::integer
GROUP BY q.platform
ORDER BY q.platform;

COMMIT;
