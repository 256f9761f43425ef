-- pause_app.sql - pause an app: its pushes stay in push.queue (nothing is
-- sent, nothing is dropped) until resume_app.sql. New pushes are still
-- accepted and queued. Pushes already claimed by a dispatcher finish.
-- Running dispatchers see the change within a second.
--
-- Variables:
--   app  required  the app's name (push.apps.name)
--
-- Prints the app's row after the change and how many pushes it has queued.
--
-- Example:
--   psql -v app=shop -f admin-sql/pause_app.sql

\set ON_ERROR_STOP on
\set QUIET on

\if :{?app}
\else
  DO $$ BEGIN RAISE EXCEPTION 'pause_app.sql: variable app is required'
    USING HINT = 'psql -v app=NAME -f admin-sql/pause_app.sql';
  END $$;
\endif

-- Fails with "pgpush: unknown app" for a name that is not in push.apps.
SELECT push.app_id(:'app') AS app_id \gset

UPDATE push.apps a
SET paused = true
WHERE a.id = :'app_id'::integer
RETURNING a.id, a.name, a.paused, a.banned_until,
  (SELECT count(*) FROM push.queue q WHERE q.app_id = a.id) AS queued;
