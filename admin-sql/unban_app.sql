-- unban_app.sql - lift an app's ban (set by an admin or by the dispatcher's
-- auto-ban): clears banned_until, ban_reason and banned_by, so its pushes
-- are sent again. Running dispatchers see the change within a second. A
-- no-op (apart from printing the row) for an app that is not banned.
--
-- Variables:
--   app  required  the app's name (push.apps.name)
--
-- Prints the app's row after the change.
--
-- Example:
--   psql -v app=shop -f admin-sql/unban_app.sql

\set ON_ERROR_STOP on
\set QUIET on

\if :{?app}
\else
  DO $$ BEGIN RAISE EXCEPTION 'unban_app.sql: variable app is required'
    USING HINT = 'psql -v app=NAME -f admin-sql/unban_app.sql';
  END $$;
\endif

-- Fails with "pgpush: unknown app" for a name that is not in push.apps.
SELECT push.app_id(:'app') AS app_id \gset

UPDATE push.apps
SET banned_until = NULL, ban_reason = NULL, banned_by = NULL
WHERE id = :'app_id'::integer
RETURNING id, name, tier, paused, banned_until, ban_reason, banned_by;
