-- pgpush schema, part 9: roles, grants and row-level security.
--
--   pgpush_app        an app's backend: enqueue pushes, register devices -
--                     only for the apps its login role is bound to
--                     (push.app_bindings); never credentials.
--   pgpush_analyst    read results, stats and device attributes; never
--                     credentials, tokens or payload secrets' keys.
--   pgpush_admin      everything: apps, bans, credentials, bindings.
--   pgpush_dispatcher what pgpushd needs: read config and credentials,
--                     claim and finish queue rows, write results and stats.
-- Roles are cluster-wide and created only if missing. Grant them to login
-- roles (GRANT pgpush_app TO shop_backend) - never log in as them.

DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['pgpush_app', 'pgpush_analyst', 'pgpush_admin',
                           'pgpush_dispatcher'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END $$;

REVOKE ALL ON SCHEMA push FROM PUBLIC;
GRANT USAGE ON SCHEMA push
  TO pgpush_app, pgpush_analyst, pgpush_admin, pgpush_dispatcher;

-- Functions are executable by PUBLIC by default; take that back and grant
-- per role. (Trigger functions need no EXECUTE grant to fire.)
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA push FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  push.app_id(text), push.bound_app_ids(), push.check_app_access(integer),
  push.token_problem(push.platform, text), push.payload_problem(jsonb),
  push.payload_limit(push.platform, jsonb),
  push.payload_size(push.platform, jsonb),
  push.payload_fits(push.platform, jsonb),
  push.reject_push(text, integer, text),
  push.register_device(integer, push.platform, text, text, text, text, text,
                       text, text, text, text)
  TO pgpush_app, pgpush_admin, pgpush_dispatcher;
GRANT EXECUTE ON FUNCTION
  push.app_id(text), push.latency_bounds_ms(),
  push.hist_add(bigint[], bigint[]), push.hist_merge(bigint[]),
  push.hist_percentile(bigint[], double precision)
  TO pgpush_analyst, pgpush_admin, pgpush_dispatcher;
GRANT EXECUTE ON FUNCTION push.maintain_partitions(integer, integer)
  TO pgpush_admin, pgpush_dispatcher;
-- Stats views, rollup and maintenance (migration 0003).
GRANT EXECUTE ON FUNCTION push.rollup_stats(integer), push.run_maintenance()
  TO pgpush_admin, pgpush_dispatcher;
GRANT SELECT ON push.stats_hour, push.stats_all, push.app_stats_hourly,
  push.app_stats_daily, push.outcomes_by_device, push.devices_by_attribute,
  push.token_churn_daily, push.dispatcher_health, push.campaign_funnel
  TO pgpush_analyst;
-- Insert-time outcomes (migration 0004). The enqueue trigger writes
-- push.stats_inbox as its owner (SECURITY DEFINER): app roles need no grant
-- on it; only the fold (definer too) deletes from it.
GRANT EXECUTE ON FUNCTION push.fold_stats_inbox()
  TO pgpush_admin, pgpush_dispatcher;
GRANT SELECT ON push.stats_inbox TO pgpush_analyst;
GRANT EXECUTE ON FUNCTION push.hist_count(bigint[])
  TO pgpush_analyst, pgpush_admin, pgpush_dispatcher;

-- pgpush_app
GRANT SELECT, INSERT ON push.pushes TO pgpush_app;
GRANT SELECT, INSERT, UPDATE ON push.devices TO pgpush_app;
GRANT SELECT ON push.apps, push.app_bindings TO pgpush_app;

-- pgpush_analyst: history and stats; device attributes but not tokens.
GRANT SELECT ON push.apps, push.deliveries, push.stats_minute,
  push.stats_hourly, push.stats_daily, push.dispatchers, push.debug_events,
  push.campaigns, push.campaign_targets, push.schema_migrations,
  push.settings
  TO pgpush_analyst;
GRANT SELECT (id, app_id, device_id, platform, user_id, newest_device_only,
  payload, priority, collapse_key, ttl, expires_at, send_after,
  idempotency_key, debug, campaign_id, created_at) ON push.pushes
  TO pgpush_analyst;
GRANT SELECT (id, app_id, platform, user_id, app_version, os_version,
  device_model, timezone, locale, created_at, updated_at, last_seen_at,
  invalidated_at, invalid_reason) ON push.devices TO pgpush_analyst;
GRANT SELECT (id, push_id, app_id, platform, device_id, priority, not_before,
  expires_at, enqueued_at, attempts, lease_owner, lease_expires_at,
  last_error) ON push.queue TO pgpush_analyst;

-- pgpush_dispatcher
GRANT SELECT ON ALL TABLES IN SCHEMA push TO pgpush_dispatcher;
GRANT UPDATE (banned_until, ban_reason, banned_by) ON push.apps
  TO pgpush_dispatcher;
GRANT UPDATE (invalidated_at, invalid_reason) ON push.devices
  TO pgpush_dispatcher;
GRANT INSERT, UPDATE, DELETE ON push.queue TO pgpush_dispatcher;
GRANT INSERT ON push.deliveries, push.debug_events TO pgpush_dispatcher;
GRANT INSERT, UPDATE ON push.stats_minute, push.dispatchers
  TO pgpush_dispatcher;
GRANT UPDATE (state) ON push.campaigns TO pgpush_dispatcher;
GRANT UPDATE (enqueued_at) ON push.campaign_targets TO pgpush_dispatcher;

-- pgpush_admin
GRANT ALL ON ALL TABLES IN SCHEMA push TO pgpush_admin;
GRANT ALL ON ALL SEQUENCES IN SCHEMA push TO pgpush_admin;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA push TO pgpush_admin;

-- Row-level security: app roles see and write only their bound apps, and
-- get a clear error (from push.check_app_access) for any other app. The
-- bound-app list is computed once per statement (the sub-select).
ALTER TABLE push.pushes ENABLE ROW LEVEL SECURITY;
ALTER TABLE push.devices ENABLE ROW LEVEL SECURITY;
ALTER TABLE push.app_bindings ENABLE ROW LEVEL SECURITY;

CREATE POLICY pushes_bound_app ON push.pushes TO pgpush_app
  USING (app_id = ANY ((SELECT push.bound_app_ids())::integer[]))
  WITH CHECK (app_id = ANY ((SELECT push.bound_app_ids())::integer[])
              OR push.check_app_access(app_id));
CREATE POLICY pushes_staff ON push.pushes
  TO pgpush_admin, pgpush_dispatcher, pgpush_analyst
  USING (true) WITH CHECK (true);
COMMENT ON POLICY pushes_bound_app ON push.pushes IS
  'pgpush_app roles enqueue and read pushes of their bound apps only.';

CREATE POLICY devices_bound_app ON push.devices TO pgpush_app
  USING (app_id = ANY ((SELECT push.bound_app_ids())::integer[]))
  WITH CHECK (app_id = ANY ((SELECT push.bound_app_ids())::integer[])
              OR push.check_app_access(app_id));
CREATE POLICY devices_staff ON push.devices
  TO pgpush_admin, pgpush_dispatcher, pgpush_analyst
  USING (true) WITH CHECK (true);
COMMENT ON POLICY devices_bound_app ON push.devices IS
  'pgpush_app roles register and read devices of their bound apps only.';

CREATE POLICY app_bindings_own ON push.app_bindings TO pgpush_app
  USING (role_name = current_user);
CREATE POLICY app_bindings_staff ON push.app_bindings
  TO pgpush_admin, pgpush_dispatcher USING (true) WITH CHECK (true);
COMMENT ON POLICY app_bindings_own ON push.app_bindings IS
  'An app role sees only its own bindings.';

-- The idempotency trigger runs as the inserting role: app roles may record
-- keys, for their bound apps only.
GRANT INSERT ON push.idempotency_keys TO pgpush_app;
ALTER TABLE push.idempotency_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY idempotency_keys_bound_app ON push.idempotency_keys
  TO pgpush_app
  WITH CHECK (app_id = ANY ((SELECT push.bound_app_ids())::integer[]));
CREATE POLICY idempotency_keys_staff ON push.idempotency_keys
  TO pgpush_admin, pgpush_dispatcher USING (true) WITH CHECK (true);
COMMENT ON POLICY idempotency_keys_bound_app ON push.idempotency_keys IS
  'App roles record idempotency keys for their bound apps only.';
