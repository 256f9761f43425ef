-- cancel_campaign.sql - cancel a campaign: sets push.campaigns.state to
-- 'cancelled' and, in the same statement, deletes the campaign's queue rows
-- that no dispatcher holds and records each in push.deliveries with outcome
-- 'cancelled' (attempt 0, provider_reason saying who cancelled), counted
-- in the stats (push.stats_inbox: push.campaign_funnel's `cancelled`). Rows a
-- dispatcher has claimed under a live lease are left to finish (their
-- number is printed); rows under a lapsed lease are cancelled. A row being
-- claimed at this very moment is either cancelled or claimed, never both:
-- the DELETE waits for the claim and re-checks the lease. Running it again
-- cancels whatever was queued since (e.g. a lease that lapsed).
--
-- Variables:
--   app       required  the app's name (push.apps.name)
--   campaign  required  the campaign's name (push.campaigns.name, unique
--                       within the app)
--
-- Prints the campaign, its previous state, the rows cancelled and the rows
-- left in flight.
--
-- Example:
--   psql -v app=shop -v campaign='black-friday' \
--        -f admin-sql/cancel_campaign.sql

\set ON_ERROR_STOP on
\set QUIET on

\if :{?app}
\else
  DO $$ BEGIN RAISE EXCEPTION 'cancel_campaign.sql: variable app is required'
    USING HINT = 'psql -v app=NAME -v campaign=NAME '
                 '-f admin-sql/cancel_campaign.sql';
  END $$;
\endif
\if :{?campaign}
\else
  DO $$ BEGIN
    RAISE EXCEPTION 'cancel_campaign.sql: variable campaign is required'
    USING HINT = 'psql -v app=NAME -v campaign=NAME '
                 '-f admin-sql/cancel_campaign.sql';
  END $$;
\endif

-- Fails with "pgpush: unknown app" for a name that is not in push.apps.
SELECT push.app_id(:'app') AS app_id,
       EXISTS (SELECT 1 FROM push.campaigns c
               WHERE c.app_id = push.app_id(:'app')
                 AND c.name = :'campaign') AS campaign_found \gset
\if :campaign_found
\else
  DO $$ BEGIN RAISE EXCEPTION 'cancel_campaign.sql: unknown campaign'
    USING HINT = 'The app has no campaign of that name; see push.campaigns.';
  END $$;
\endif

WITH old AS (
  SELECT c.id, c.state
  FROM push.campaigns c
  WHERE c.app_id = :'app_id'::integer AND c.name = :'campaign'
  FOR UPDATE
), camp AS (
  UPDATE push.campaigns c
  SET state = 'cancelled'
  FROM old
  WHERE c.id = old.id
  RETURNING c.id, c.app_id, c.name, old.state AS previous_state
), gone AS (
  -- Locked rows (a claim in progress) are waited for and re-checked.
  DELETE FROM push.queue q
  USING push.pushes p, old
  WHERE p.id = q.push_id
    AND p.campaign_id = old.id
    AND q.app_id = :'app_id'::integer
    AND (q.lease_owner IS NULL OR q.lease_expires_at IS NULL
         OR q.lease_expires_at <= now())
  RETURNING q.id, q.push_id, q.app_id, q.platform, q.device_id,
            q.enqueued_at, q.attempts, p.campaign_id
), recorded AS (
  INSERT INTO push.deliveries (push_id, queue_id, app_id, platform,
    device_id, campaign_id, outcome, attempt, provider_reason, enqueued_at,
    detail)
  SELECT g.push_id, g.id, g.app_id, g.platform, g.device_id, g.campaign_id,
         'cancelled', 0,
         format('campaign %s cancelled by %s', :'campaign', current_user),
         g.enqueued_at,
         jsonb_build_object('attempts_before', g.attempts)
  FROM gone g
  RETURNING finished_at, app_id, platform, campaign_id
), counted AS (
  -- Counted in the stats like the outcomes decided at enqueue: appended
  -- to push.stats_inbox (push.stats_all reads it; the next maintenance
  -- folds it into push.stats_minute).
  INSERT INTO push.stats_inbox (minute, app_id, platform, campaign_id,
    outcome, count)
  SELECT date_trunc('minute', finished_at, 'UTC'), app_id, platform,
         campaign_id, 'cancelled', count(*)
  FROM recorded
  GROUP BY 1, 2, 3, 4
)
SELECT camp.id AS campaign_id, camp.name AS campaign, camp.previous_state,
       'cancelled'::push.campaign_state AS state,
       (SELECT count(*) FROM recorded) AS cancelled,
       (SELECT count(*) FROM push.queue q JOIN push.pushes p
          ON p.id = q.push_id
        WHERE q.app_id = camp.app_id AND p.campaign_id = camp.id
          AND q.lease_expires_at > now()) AS left_in_flight
FROM camp;
