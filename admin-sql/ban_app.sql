-- ban_app.sql - ban an app: its pushes are dropped (outcome dropped_banned,
-- counted) until banned_until. Running dispatchers see the change within a
-- second (push.apps' trigger sends NOTIFY pgpush_config). Banning an app that
-- is already banned replaces the ban (new end, reason and author).
--
-- Variables:
--   app       required  the app's name (push.apps.name)
--   reason    required  why, in words; stored in push.apps.ban_reason
--   duration  optional  how long, a PostgreSQL interval; default '1 hour'
--   by        optional  who bans, stored in banned_by; default current_user
--
-- Prints the app's row after the change.
--
-- Example:
--   psql -v app=shop -v duration='30 minutes' \
--        -v reason='bad APNs key, see INC-4711' -f admin-sql/ban_app.sql

\set ON_ERROR_STOP on
\set QUIET on

\if :{?app}
\else
  DO $$ BEGIN RAISE EXCEPTION 'ban_app.sql: variable app is required'
    USING HINT = 'psql -v app=NAME -v reason=''...'' -f admin-sql/ban_app.sql';
  END $$;
\endif
\if :{?reason}
\else
  DO $$ BEGIN RAISE EXCEPTION 'ban_app.sql: variable reason is required'
    USING HINT = 'psql -v app=NAME -v reason=''why'' -f admin-sql/ban_app.sql';
  END $$;
\endif
\if :{?duration}
\else
  \set duration '1 hour'
\endif
\if :{?by}
\else
  \set by ''
\endif

-- Fails with "pgpush: unknown app" for a name that is not in push.apps.
SELECT push.app_id(:'app') AS app_id,
       btrim(:'reason') <> '' AS reason_ok,
       :'duration'::interval > interval '0' AS duration_ok \gset

\if :reason_ok
\else
  DO $$ BEGIN RAISE EXCEPTION 'ban_app.sql: reason must not be empty'; END $$;
\endif
\if :duration_ok
\else
  DO $$ BEGIN RAISE EXCEPTION 'ban_app.sql: duration must be a positive interval'
    USING HINT = 'e.g. -v duration=''2 hours'' (not ''2 hours ago'')';
  END $$;
\endif

UPDATE push.apps
SET banned_until = now() + :'duration'::interval,
    ban_reason   = btrim(:'reason'),
    banned_by    = coalesce(nullif(btrim(:'by'), ''), current_user)
WHERE id = :'app_id'::integer
RETURNING id, name, tier, paused, banned_until, ban_reason, banned_by;
