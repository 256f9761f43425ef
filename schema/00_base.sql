-- pgpush schema, part 0: the schema, migrations bookkeeping, shared types
-- and settings.
--
-- schema/*.sql is the readable current schema, loaded in file-name order.
-- migrations/ is how a database gets there; tests/sql/schema.t proves that
-- the two produce the same objects. Change both together: a new migration
-- file for the change, and the same change here.

CREATE SCHEMA IF NOT EXISTS push;
COMMENT ON SCHEMA push IS
  'pgpush: push notification queue, devices, credentials, delivery results '
  'and statistics. The tables users write SQL against are described in '
  'README.md.';

CREATE TABLE push.schema_migrations (
  version    text        PRIMARY KEY,
  checksum   text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE push.schema_migrations IS
  'Migrations applied by `pgpushd migrate`, one row per file of migrations/. '
  'Forward-only: an applied file must never change.';
COMMENT ON COLUMN push.schema_migrations.version IS
  'File name without .sql, e.g. 0001_foundation.';
COMMENT ON COLUMN push.schema_migrations.checksum IS
  'SHA-256 (hex) of the file as applied; migrate refuses to run when the '
  'file on disk no longer matches.';

CREATE TYPE push.platform AS ENUM ('apns', 'fcm', 'wns', 'mpns', 'webpush');
COMMENT ON TYPE push.platform IS
  'Push provider: apns (Apple), fcm (Firebase Cloud Messaging HTTP v1), '
  'wns (Windows), mpns (Windows Phone), webpush (RFC 8030 Web Push).';

CREATE TYPE push.priority AS ENUM ('low', 'normal', 'high');
COMMENT ON TYPE push.priority IS
  'Delivery priority: high pushes are claimed first and sent with the '
  'provider''s immediate priority; low ones with its power-saving one.';

CREATE TYPE push.app_tier AS ENUM ('low', 'standard', 'high', 'critical');
COMMENT ON TYPE push.app_tier IS
  'Service tier of an app: higher tiers get larger in-flight windows; '
  'critical apps are never auto-banned (their pushes stay queued).';

CREATE TYPE push.outcome AS ENUM (
  'sent',             -- accepted by the provider
  'retry',            -- transient failure; the push was queued again
  'failed',           -- permanent failure (see provider_reason)
  'invalid_token',    -- the provider says the token is dead; device invalidated
  'expired',          -- its time-to-live passed before it could be sent
  'dropped_banned',   -- its app was banned when it was claimed
  'dropped_overload', -- dropped by a low-tier app's overflow policy
  'uncertain',        -- ambiguous provider answer, not resent (MPNS)
  'no_device',        -- a user target with no active device
  'cancelled'         -- removed from the queue by an admin (campaign cancel)
);
COMMENT ON TYPE push.outcome IS
  'Outcome of one delivery attempt of a push to one device.';

CREATE TABLE push.settings (
  name        text PRIMARY KEY,
  value       text NOT NULL,
  description text NOT NULL
);
COMMENT ON TABLE push.settings IS
  'Database-side settings of pgpush (retention and the like). Edit with '
  'UPDATE; read by the maintenance functions.';
COMMENT ON COLUMN push.settings.value IS
  'The setting''s value as text; each row''s description says its unit.';

INSERT INTO push.settings (name, value, description) VALUES
  ('history_retention_days', '30',
   'Days of push.deliveries partitions, push.pushes rows and idempotency '
   'keys kept by push.maintain_partitions().'),
  ('partitions_ahead_days', '3',
   'Daily push.deliveries partitions created ahead of today.');

-- Shared trigger: keep updated_at current on every UPDATE.
CREATE FUNCTION push.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;
COMMENT ON FUNCTION push.touch_updated_at() IS
  'Trigger: sets updated_at to now() on UPDATE.';
