-- resume_app.sql - resume a paused app: its queued pushes are sent again.
-- Running dispatchers see the change within a second. (A ban is separate:
-- see unban_app.sql.)
--
-- Variables:
--   app  required  the app's name (push.apps.name)
--
-- Prints the app's row after the change and how many pushes it has queued.
--
-- Example:
--   psql -v app=shop -f admin-sql/resume_app.sql

\set ON_ERROR_STOP on
\set QUIET on

\if :{?app}
\else
  DO $$ BEGIN RAISE EXCEPTION 'resume_app.sql: variable app is required'
    USING HINT = 'psql -v app=NAME -f admin-sql/resume_app.sql';
  END $$;
\endif

-- Fails with "pgpush: unknown app" for a name that is not in push.apps.
SELECT push.app_id(:'app') AS app_id \gset

UPDATE push.apps a
SET paused = false
WHERE a.id = :'app_id'::integer
RETURNING a.id, a.name, a.paused, a.banned_until,
  (SELECT count(*) FROM push.queue q WHERE q.app_id = a.id) AS queued;
