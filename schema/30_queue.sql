-- pgpush schema, part 3: the enqueue contract (push.pushes) and the hot
-- queue (push.queue).
--
-- Apps INSERT into push.pushes, one row or millions with INSERT ... SELECT.
-- Each row names exactly one target: a device_id, a (platform, token) pair,
-- or a user_id. One statement-level trigger then, for the whole statement:
--   1. checks every row (app, target, payload shape and size, TTL, token
--      format) and rejects the statement with a message naming the first
--      bad row - nothing is half enqueued;
--   2. resolves targets to devices (a user_id fans out to each active device
--      of that user, or to the newest one only) and writes one push.queue
--      row per device;
--   3. records pushes that cannot be sent at all (the device is invalidated,
--      the user has no active device) in push.deliveries right away, and
--      counts them in push.stats_inbox (folded into push.stats_minute by
--      push.run_maintenance());
--   4. sends one NOTIFY pgpush_enqueue, whatever the row count.
-- A row-level BEFORE trigger, only for rows that carry an idempotency_key,
-- turns a second insert with the same (app, key) into a no-op.
--
-- push.queue is small and hot: the dispatcher claims rows with FOR UPDATE
-- SKIP LOCKED, leases them, and deletes them in the same statement that
-- records their outcome. push.pushes keeps the payload once per push, however
-- many devices it fans out to.

CREATE TABLE push.pushes (
  id                 bigint GENERATED ALWAYS AS IDENTITY (CACHE 1000)
                     PRIMARY KEY,
  app_id             integer NOT NULL,
  device_id          bigint,
  platform           push.platform,
  token              text,
  user_id            text,
  newest_device_only boolean NOT NULL DEFAULT false,
  payload            jsonb NOT NULL,
  priority           push.priority NOT NULL DEFAULT 'normal',
  collapse_key       text,
  ttl                integer,
  expires_at         timestamptz,
  send_after         timestamptz,
  idempotency_key    text,
  debug              boolean NOT NULL DEFAULT false,
  campaign_id        bigint,
  created_at         timestamptz NOT NULL DEFAULT now()
);
-- Retention deletes by age; BRIN costs next to nothing per insert.
CREATE INDEX pushes_created_at ON push.pushes USING brin (created_at);
COMMENT ON TABLE push.pushes IS
  'The enqueue contract: INSERT one row per push (or bulk INSERT ... '
  'SELECT). Target: exactly one of device_id, (platform, token), or '
  'user_id. Bad rows are rejected at insert with a message naming the '
  'problem; nothing is half enqueued. Rows stay as the record of what was '
  'asked, for history_retention_days.';
COMMENT ON COLUMN push.pushes.id IS 'Push id, assigned by the database.';
COMMENT ON COLUMN push.pushes.app_id IS
  'The sending app (push.apps.id); it must exist and be enabled.';
COMMENT ON COLUMN push.pushes.device_id IS
  'Target: one registered device (push.devices.id) of this app.';
COMMENT ON COLUMN push.pushes.platform IS
  'The platform of a token target (required with token). With user_id: '
  'only that user''s devices on this platform. NULL otherwise.';
COMMENT ON COLUMN push.pushes.token IS
  'Target: a device token / channel URL of this platform, registered or '
  'not (Web Push subscriptions must be registered, for their keys).';
COMMENT ON COLUMN push.pushes.user_id IS
  'Target: every active device of this user of this app.';
COMMENT ON COLUMN push.pushes.newest_device_only IS
  'With user_id: only the user''s most recently seen active device.';
COMMENT ON COLUMN push.pushes.payload IS
  'Platform-neutral JSON object (title, body, subtitle, badge, sound, '
  'image, category, thread_id, data, ...) plus optional per-platform '
  'overrides (apns, fcm, wns, mpns, webpush) merged into what that '
  'platform receives. Size limits per platform: apns 4096 (voip 5120), fcm '
  '4096, wns 5000, mpns 3072, webpush 3993 bytes.';
COMMENT ON COLUMN push.pushes.priority IS
  'high pushes are claimed first and sent with the provider''s immediate '
  'priority.';
COMMENT ON COLUMN push.pushes.collapse_key IS
  'Pushes with the same key replace each other on the device (APNs '
  'collapse id: at most 64 bytes). Sent as a header: no control '
  'characters, no space at either end.';
COMMENT ON COLUMN push.pushes.ttl IS
  'Seconds the push stays worth delivering, from created_at; past it the '
  'push is finished as expired instead of sent. Or use expires_at.';
COMMENT ON COLUMN push.pushes.expires_at IS
  'Absolute expiry instead of ttl (not both).';
COMMENT ON COLUMN push.pushes.send_after IS
  'Not sent before this time (scheduled push). NULL: as soon as possible.';
COMMENT ON COLUMN push.pushes.idempotency_key IS
  'A second insert with the same (app_id, idempotency_key) is a no-op. '
  'Keys are remembered for history_retention_days.';
COMMENT ON COLUMN push.pushes.debug IS
  'true traces every step of this push into push.debug_events.';
COMMENT ON COLUMN push.pushes.campaign_id IS
  'The campaign this push belongs to (push.campaigns.id, same app).';
COMMENT ON COLUMN push.pushes.created_at IS 'When the push was enqueued.';

CREATE TABLE push.queue (
  id               bigint GENERATED ALWAYS AS IDENTITY (CACHE 1000)
                   PRIMARY KEY,
  push_id          bigint NOT NULL,
  app_id           integer NOT NULL,
  platform         push.platform NOT NULL,
  device_id        bigint,
  token            text,
  priority         push.priority NOT NULL,
  not_before       timestamptz NOT NULL,
  expires_at       timestamptz,
  enqueued_at      timestamptz NOT NULL,
  attempts         integer NOT NULL DEFAULT 0,
  lease_owner      text,
  lease_expires_at timestamptz,
  last_error       text,
  CONSTRAINT queue_one_target CHECK ((device_id IS NULL) <> (token IS NULL))
) WITH (fillfactor = 40);
-- Fillfactor 40 (migration 0006): every enqueued row's page keeps room for
-- the row's next version, so the claim's UPDATE of the lease is a HOT update
-- (no new index entries, no page elsewhere). At 70 only a third were.
-- The claim walks one (app, platform) in priority order. It is the only
-- secondary index: every index costs each enqueued row. (A device that dies
-- while pushes for it are queued is caught when they are claimed, by the
-- claim's join to push.devices, not by an index on device_id.)
CREATE INDEX queue_claim
  ON push.queue (app_id, platform, priority DESC, not_before);
-- No statistics for lease_owner (migration 0002): ANALYZE mostly sees it
-- NULL, and the planner would then expect a lease to match one row and plan
-- the ack as a queue scan joined row by row to its batch.
ALTER TABLE push.queue ALTER COLUMN lease_owner SET STATISTICS 0;
COMMENT ON TABLE push.queue IS
  'The hot queue: one row per (push, device) still to be sent. Written by '
  'the enqueue trigger, claimed by dispatchers with FOR UPDATE SKIP LOCKED '
  'under a lease, deleted when its outcome is recorded in push.deliveries. '
  'Kept small; do not write to it directly (admin-sql/requeue_failed.sql '
  'does it for you). Rows whose device was invalidated after enqueue are '
  'finished as invalid_token when claimed, never sent.';
COMMENT ON COLUMN push.queue.push_id IS 'The push (push.pushes.id).';
COMMENT ON COLUMN push.queue.app_id IS 'Copied from the push.';
COMMENT ON COLUMN push.queue.platform IS 'Platform of the target device.';
COMMENT ON COLUMN push.queue.device_id IS
  'Target device, or NULL for a token target with no registered device. '
  'Exactly one of device_id and token is set.';
COMMENT ON COLUMN push.queue.token IS
  'Token / channel URL of an unregistered token target; NULL when device_id '
  'is set (the token is push.devices.token, read when claimed).';
COMMENT ON COLUMN push.queue.priority IS 'Copied from the push.';
COMMENT ON COLUMN push.queue.not_before IS
  'Not claimed before this time: send_after, then each retry''s time.';
COMMENT ON COLUMN push.queue.expires_at IS
  'Finished as expired instead of sent after this time. NULL: never.';
COMMENT ON COLUMN push.queue.enqueued_at IS
  'When the push was enqueued (latency is measured from here).';
COMMENT ON COLUMN push.queue.attempts IS 'Attempts made so far.';
COMMENT ON COLUMN push.queue.lease_owner IS
  'Dispatcher (push.dispatchers.id) holding the row, or NULL.';
COMMENT ON COLUMN push.queue.lease_expires_at IS
  'When the lease lapses and any dispatcher may claim the row again.';
COMMENT ON COLUMN push.queue.last_error IS
  'Why the previous attempt failed, if it did.';

CREATE TABLE push.idempotency_keys (
  app_id     integer NOT NULL,
  key        text NOT NULL,
  push_id    bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (app_id, key)
);
COMMENT ON TABLE push.idempotency_keys IS
  'Idempotency keys seen per app, with the push they created; purged after '
  'history_retention_days.';

-- Access check for roles bound to apps (see 90_roles.sql). True for admin,
-- dispatcher and other roles that are not pgpush_app members; for app roles
-- true only for their bound apps, otherwise it raises a clear error.
CREATE FUNCTION push.bound_app_ids() RETURNS integer[]
LANGUAGE sql STABLE AS $$
  SELECT coalesce(array_agg(app_id ORDER BY app_id), '{}')
  FROM push.app_bindings WHERE role_name = current_user
$$;
COMMENT ON FUNCTION push.bound_app_ids() IS
  'The apps the current role is bound to (push.app_bindings).';

CREATE FUNCTION push.check_app_access(p_app_id integer) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_bound integer[];
BEGIN
  IF pg_has_role('pgpush_admin', 'MEMBER') OR
     pg_has_role('pgpush_dispatcher', 'MEMBER') OR
     NOT pg_has_role('pgpush_app', 'MEMBER') THEN
    RETURN true;
  END IF;
  v_bound := push.bound_app_ids();
  IF p_app_id = ANY (v_bound) THEN
    RETURN true;
  END IF;
  RAISE EXCEPTION 'pgpush: role "%" may not use app %', current_user,
    p_app_id
    USING ERRCODE = 'insufficient_privilege',
          HINT = CASE WHEN cardinality(v_bound) = 0 THEN
            'The role is bound to no app. An admin binds it: INSERT INTO '
            'push.app_bindings (role_name, app_id) VALUES (...).'
          ELSE format('The role is bound to app %s.',
                      array_to_string(v_bound, ', ')) END;
END $$;
COMMENT ON FUNCTION push.check_app_access(integer) IS
  'true if the current role may use this app; raises "role ... may not use '
  'app N" for a pgpush_app role not bound to it. Used by row-level '
  'security on push.pushes and push.devices.';

-- payload_problem(payload): what is wrong with the payload's shape, or NULL.
CREATE FUNCTION push.payload_problem(p jsonb) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  -- Ordered so a typical payload costs a few key lookups: the overrides
  -- are looked at only when one of them is present.
  SELECT CASE
    WHEN jsonb_typeof(p) <> 'object' THEN
      'payload must be a JSON object, not ' || jsonb_typeof(p)
    -- An empty object is 5 bytes stored (8 with a 4-byte header); any
    -- key makes it at least 13: cheaper than comparing with '{}'.
    WHEN pg_column_size(p) <= 8 THEN
      'payload is empty: give it a title, body, badge, sound, data or a '
      'platform override'
    WHEN jsonb_typeof(p -> 'title') <> 'string' THEN
      'payload.title must be a string'
    WHEN jsonb_typeof(p -> 'body') <> 'string' THEN
      'payload.body must be a string'
    WHEN jsonb_typeof(p -> 'data') <> 'object' THEN
      'payload.data must be a JSON object'
    WHEN p ? 'badge' AND NOT (jsonb_typeof(p -> 'badge') = 'number' AND
                              (p ->> 'badge') ~ '^[0-9]{1,9}$') THEN
      'payload.badge must be a whole number, 0 or more'
    -- The dispatcher parses payloads up to this depth: a container at
    -- level 16 below the payload object is the 17th level.
    WHEN jsonb_path_exists(p, 'strict $.**{16} ? (@.type() == "object" || '
                              '@.type() == "array")') THEN
      'payload nests deeper than 16 levels of objects and arrays'
    WHEN p ?| '{apns,fcm,wns,mpns,webpush}'::text[] THEN CASE
      WHEN jsonb_typeof(p -> 'apns') <> 'object' THEN
        'payload.apns must be a JSON object'
      WHEN jsonb_typeof(p -> 'fcm') <> 'object' THEN
        'payload.fcm must be a JSON object'
      WHEN jsonb_typeof(p -> 'wns') <> 'object' THEN
        'payload.wns must be a JSON object'
      WHEN jsonb_typeof(p -> 'mpns') <> 'object' THEN
        'payload.mpns must be a JSON object'
      WHEN jsonb_typeof(p -> 'webpush') <> 'object' THEN
        'payload.webpush must be a JSON object'
      -- Override fields the senders put into headers (null: absent).
      WHEN jsonb_typeof(p -> 'apns' -> 'push_type') <> 'null' AND
           (p -> 'apns' ->> 'push_type') <> ALL (
             '{alert,background,complication,controls,fileprovider,'
             'liveactivity,location,mdm,pushtotalk,voip,widgets}'::text[])
      THEN
        'payload.apns.push_type must be one of alert, background, '
        'complication, controls, fileprovider, liveactivity, location, '
        'mdm, pushtotalk, voip, widgets'
      WHEN jsonb_typeof(p -> 'apns' -> 'priority') <> 'null' AND NOT (
             jsonb_typeof(p -> 'apns' -> 'priority') = 'number' AND
             (p -> 'apns' ->> 'priority') IN ('10', '5', '1')) THEN
        'payload.apns.priority must be 10, 5 or 1'
      WHEN jsonb_typeof(p -> 'wns' -> 'tag') <> 'null' AND NOT (
             jsonb_typeof(p -> 'wns' -> 'tag') = 'string' AND
             (p -> 'wns' ->> 'tag') ~ '^[A-Za-z0-9]{1,16}$') THEN
        'payload.wns.tag must be 1 to 16 letters or digits'
      WHEN jsonb_typeof(p -> 'wns' -> 'cache_policy') <> 'null' AND
           (p -> 'wns' ->> 'cache_policy') <> ALL (
             '{cache,no-cache}'::text[]) THEN
        'payload.wns.cache_policy must be "cache" or "no-cache"'
    END
  END
$$;
COMMENT ON FUNCTION push.payload_problem(jsonb) IS
  'What is wrong with a payload''s shape (a sentence), or NULL: not an '
  'object, empty, a neutral field of the wrong type, nested deeper than '
  '16 levels of objects and arrays, an override that is not an object, or '
  'an override field sent as a header (apns.push_type, apns.priority, '
  'wns.tag, wns.cache_policy) that is not one of its values.';

CREATE FUNCTION push.payload_limit(p_platform push.platform, p jsonb)
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE p_platform
    WHEN 'apns' THEN
      CASE WHEN p -> 'apns' ->> 'push_type' = 'voip' THEN 5120 ELSE 4096 END
    WHEN 'fcm' THEN 4096
    WHEN 'wns' THEN 5000
    WHEN 'mpns' THEN 3072
    WHEN 'webpush' THEN 3993
  END
$$;
COMMENT ON FUNCTION push.payload_limit(push.platform, jsonb) IS
  'Largest payload in bytes the platform accepts: APNs 4096 (5120 when '
  'payload.apns.push_type is voip), FCM 4096, WNS 5000, MPNS 3072, Web Push '
  '3993 (plaintext).';

CREATE FUNCTION push.payload_size(p_platform push.platform, p jsonb)
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN p ?| '{apns,fcm,wns,mpns,webpush}'::text[] THEN
      octet_length(((p - '{apns,fcm,wns,mpns,webpush}'::text[])
        || coalesce(CASE p_platform WHEN 'apns' THEN p -> 'apns'
                                    WHEN 'fcm' THEN p -> 'fcm'
                                    WHEN 'wns' THEN p -> 'wns'
                                    WHEN 'mpns' THEN p -> 'mpns'
                                    ELSE p -> 'webpush' END, '{}'))::text)
    ELSE octet_length(p::text)
  END
$$;
COMMENT ON FUNCTION push.payload_size(push.platform, jsonb) IS
  'Bytes of the payload as one platform sees it: the neutral fields with '
  'that platform''s override merged in and the other overrides removed. '
  'The dispatcher checks the exact request body again before sending.';

CREATE FUNCTION push.payload_fits(p_platform push.platform, p jsonb)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  -- A platform sees at most the whole payload's text (other overrides
  -- removed, its own merged in), so that is checked first and the exact
  -- size only when it is over. (No shortcut from the stored size: a number
  -- such as 1e5000 is a few bytes stored and thousands as text.)
  SELECT octet_length(p::text) <= push.payload_limit(p_platform, p)
      OR push.payload_size(p_platform, p) <= push.payload_limit(p_platform, p)
$$;
COMMENT ON FUNCTION push.payload_fits(push.platform, jsonb) IS
  'Whether the payload is within push.payload_limit() for the platform.';

-- reject(problem, push): raise the enqueue error. Returns boolean so it can
-- sit in a WHERE clause and run only for rows that have a problem.
CREATE FUNCTION push.reject_push(p_problem text, p_app_id integer,
                                 p_detail text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'pgpush: push rejected: %', p_problem
    USING ERRCODE = 'check_violation',
          DETAIL = format('app_id %s, %s', p_app_id, p_detail),
          HINT = 'Nothing of this statement was enqueued. See COMMENT ON '
                 'TABLE push.pushes for the contract.';
END $$;
COMMENT ON FUNCTION push.reject_push(text, integer, text) IS
  'Raises "pgpush: push rejected: <problem>"; used by the enqueue trigger.';

CREATE FUNCTION push.finish_unsendable(p_push_id bigint, p_app_id integer,
  p_platform push.platform, p_device_id bigint, p_campaign_id bigint,
  p_enqueued_at timestamptz, p_reason text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  -- The delivery row and its count in one statement. The count is a plain
  -- append to push.stats_inbox (no row that a dispatcher's stats merge
  -- could hold locked); push.fold_stats_inbox() adds it to
  -- push.stats_minute later. Only unsendable pushes come here: a statement
  -- whose pushes are all sendable writes nothing to either table.
  WITH finished AS (
    INSERT INTO push.deliveries (push_id, app_id, platform, device_id,
      campaign_id, outcome, provider_reason, enqueued_at)
    VALUES (p_push_id, p_app_id, p_platform, p_device_id, p_campaign_id,
      CASE WHEN p_device_id IS NULL THEN 'no_device'::push.outcome
           ELSE 'invalid_token'::push.outcome END,
      p_reason, p_enqueued_at)
    RETURNING finished_at, app_id, platform, campaign_id, outcome
  )
  INSERT INTO push.stats_inbox (minute, app_id, platform, campaign_id,
    outcome, count)
  SELECT date_trunc('minute', finished_at, 'UTC'), app_id, platform,
    campaign_id, outcome, 1
  FROM finished;
  RETURN false;
END $$;
COMMENT ON FUNCTION push.finish_unsendable(bigint, integer, push.platform,
  bigint, bigint, timestamptz, text) IS
  'Enqueue helper: records a push that cannot be sent (invalidated device: '
  'invalid_token; user without devices: no_device) in push.deliveries and '
  'counts it in push.stats_inbox. Returns false, so the row is not queued.';

CREATE FUNCTION push.take_idempotency_key() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- An app role may not probe another app's keys: check access first.
  PERFORM push.check_app_access(NEW.app_id);
  INSERT INTO push.idempotency_keys (app_id, key, push_id)
  VALUES (NEW.app_id, NEW.idempotency_key, NEW.id)
  ON CONFLICT DO NOTHING;
  IF FOUND THEN
    RETURN NEW;
  END IF;
  RETURN NULL;   -- seen before: this insert is a no-op
END $$;
COMMENT ON FUNCTION push.take_idempotency_key() IS
  'Trigger: skips a push whose (app_id, idempotency_key) was seen before.';

CREATE TRIGGER pushes_idempotency BEFORE INSERT ON push.pushes
  FOR EACH ROW WHEN (NEW.idempotency_key IS NOT NULL)
  EXECUTE FUNCTION push.take_idempotency_key();

-- push_problem(...): what is wrong with one push as sent to one device, or
-- NULL. The one statement of the enqueue rules: the set-based enqueue
-- statement and the one-row path of push.enqueue_pushes() both call it (a
-- SQL function, inlined where it is called, so it costs what the
-- expression itself costs). a_*: the push's app (NULL if there is none),
-- c_*: its campaign, d_*: the device it resolved to.
CREATE FUNCTION push.push_problem(
  p_app_id integer, p_device_id bigint, p_platform push.platform,
  p_token text, p_user_id text, p_newest_device_only boolean,
  p_payload jsonb, p_collapse_key text, p_ttl integer,
  p_expires_at timestamptz, p_idempotency_key text, p_campaign_id bigint,
  a_id integer, a_enabled boolean, a_name text,
  c_id bigint, c_app_id integer, c_state text,
  d_id bigint, d_platform push.platform)
RETURNS text LANGUAGE sql STABLE AS $$
  SELECT coalesce(
    -- the push itself
    CASE
      WHEN a_id IS NULL THEN
        format('app_id %s does not exist', p_app_id)
      WHEN NOT a_enabled THEN
        format('app "%s" is disabled', a_name)
      WHEN num_nonnulls(p_device_id, p_token, p_user_id) = 0 THEN
        'the push has no target: set device_id, token (with platform) '
        'or user_id'
      WHEN num_nonnulls(p_device_id, p_token, p_user_id) > 1 THEN
        'the push has more than one target: set only one of device_id, '
        'token or user_id'
      WHEN p_token IS NOT NULL AND p_platform IS NULL THEN
        'a token target needs its platform'
      WHEN p_newest_device_only AND p_user_id IS NULL THEN
        'newest_device_only applies only to a user_id target'
      WHEN p_ttl < 0 THEN
        format('ttl must be 0 or more seconds, not %s', p_ttl)
      WHEN p_ttl IS NOT NULL AND p_expires_at IS NOT NULL THEN
        'set ttl or expires_at, not both'
      WHEN octet_length(p_collapse_key) > 256 THEN
        'collapse_key is longer than 256 bytes'
      -- It becomes a header (apns-collapse-id, also through FCM; X-WNS-Tag):
      -- a CR or LF would start a header of its own.
      WHEN p_collapse_key ~ '[\x01-\x1f\x7f]' THEN
        'collapse_key must not contain control characters (it is sent as '
        'a header)'
      WHEN p_collapse_key ~ '^ | $' THEN
        'collapse_key must not begin or end with a space (it is sent as a '
        'header)'
      WHEN octet_length(p_idempotency_key) > 256 THEN
        'idempotency_key is longer than 256 bytes'
      WHEN p_campaign_id IS NOT NULL AND c_id IS NULL THEN
        format('campaign %s does not exist', p_campaign_id)
      WHEN c_app_id <> p_app_id THEN
        format('campaign %s belongs to another app', p_campaign_id)
      WHEN c_state IN ('cancelled', 'done') THEN
        format('campaign %s is %s', p_campaign_id, c_state)
    END,
    push.payload_problem(p_payload),
    CASE WHEN p_token IS NOT NULL THEN
      push.token_problem(p_platform, p_token) END,
    -- the push as sent to this device (its platform: the device's, or the
    -- token target's)
    CASE
      WHEN p_device_id IS NOT NULL AND d_id IS NULL THEN
        format('device %s does not exist in app %s', p_device_id, p_app_id)
      WHEN p_device_id IS NOT NULL AND p_platform IS NOT NULL
           AND p_platform <> d_platform THEN
        format('device %s is a %s device, not %s', p_device_id,
               d_platform, p_platform)
      WHEN p_token IS NOT NULL AND p_platform = 'webpush'
           AND d_id IS NULL THEN
        'a webpush token must be a registered device (its subscription '
        'keys are needed): call push.register_device first'
      WHEN coalesce(d_platform, p_platform) IS NOT NULL AND
           NOT push.payload_fits(coalesce(d_platform, p_platform),
                                 p_payload) THEN
        format('payload is %s bytes for %s, which allows %s',
               push.payload_size(coalesce(d_platform, p_platform),
                                 p_payload),
               coalesce(d_platform, p_platform),
               push.payload_limit(coalesce(d_platform, p_platform),
                                  p_payload))
      WHEN coalesce(d_platform, p_platform) = 'apns'
           AND octet_length(p_collapse_key) > 64 THEN
        format('collapse_key is %s bytes; APNs allows 64',
               octet_length(p_collapse_key))
    END)
$$;
COMMENT ON FUNCTION push.push_problem(integer, bigint, push.platform, text,
  text, boolean, jsonb, text, integer, timestamptz, text, bigint, integer,
  boolean, text, bigint, integer, text, bigint, push.platform) IS
  'Enqueue rules: what is wrong with a push (its columns, p_*) as sent to '
  'the device it resolved to (d_*), given its app (a_*) and campaign '
  '(c_*), as the sentence of the "pgpush: push rejected" error; NULL if '
  'nothing is. Used by push.enqueue_pushes().';

CREATE FUNCTION push.enqueue_pushes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET work_mem = '128MB' -- bulk inserts hash-join against push.devices
SET jit = off          -- compiling this big query costs seconds, saves none
AS $$
DECLARE
  v_apps    text;
  v_msg     text;
  v_detail  text;
  v_hint    text;
  v_rows    integer := 0;
  v_push    push.pushes;
  v_a_id    integer;
  v_a_on    boolean;
  v_a_name  text;
  v_c_id    bigint;
  v_c_app   integer;
  v_c_state text;
  v_d_id    bigint;
  v_d_plat  push.platform;
  v_d_dead  timestamptz;
  v_d_why   text;
  v_problem text;
BEGIN
  -- Most applications enqueue one push per statement. For such a statement
  -- the set-based one below costs far more to start than to run (its plan
  -- is cached, but its executor state is built at every call: four target
  -- branches, joins, the rules), so a one-row statement with a device or
  -- token target takes a short path: one lookup of the app and the device,
  -- the same rules (push.push_problem), one queue row. (A cursor: reading
  -- two rows of a million-row statement is all it costs.)
  FOR v_push IN SELECT * FROM new_pushes LOOP
    v_rows := v_rows + 1;
    EXIT WHEN v_rows > 1;
  END LOOP;
  IF v_rows = 0 THEN
    RETURN NULL;   -- every row was a repeated idempotency key
  END IF;
  IF v_rows = 1 AND v_push.user_id IS NULL
     AND (v_push.device_id IS NOT NULL OR v_push.token IS NOT NULL) THEN
    IF v_push.device_id IS NOT NULL THEN
      SELECT a.id, a.enabled, a.name, d.id, d.platform, d.invalidated_at,
        d.invalid_reason
      INTO v_a_id, v_a_on, v_a_name, v_d_id, v_d_plat, v_d_dead, v_d_why
      FROM push.apps a
      LEFT JOIN push.devices d
        ON d.id = v_push.device_id AND d.app_id = a.id
      WHERE a.id = v_push.app_id;
    ELSE
      SELECT a.id, a.enabled, a.name, d.id, d.platform, d.invalidated_at,
        d.invalid_reason
      INTO v_a_id, v_a_on, v_a_name, v_d_id, v_d_plat, v_d_dead, v_d_why
      FROM push.apps a
      LEFT JOIN push.devices d
        ON d.app_id = a.id AND d.platform = v_push.platform
       AND d.token = v_push.token
      WHERE a.id = v_push.app_id;
    END IF;
    IF v_push.campaign_id IS NOT NULL THEN
      SELECT c.id, c.app_id, c.state INTO v_c_id, v_c_app, v_c_state
      FROM push.campaigns c WHERE c.id = v_push.campaign_id;
    END IF;
    v_problem := push.push_problem(v_push.app_id, v_push.device_id,
      v_push.platform, v_push.token, v_push.user_id,
      v_push.newest_device_only, v_push.payload, v_push.collapse_key,
      v_push.ttl, v_push.expires_at, v_push.idempotency_key,
      v_push.campaign_id, v_a_id, v_a_on, v_a_name, v_c_id, v_c_app,
      v_c_state, v_d_id, v_d_plat);
    IF v_problem IS NOT NULL THEN
      PERFORM push.reject_push(v_problem, v_push.app_id,
                               format('push %s', v_push.id));
    END IF;
    IF v_d_dead IS NOT NULL THEN
      PERFORM push.finish_unsendable(v_push.id, v_push.app_id, v_d_plat,
        v_d_id, v_push.campaign_id, v_push.created_at,
        format('device invalidated at %s: %s', v_d_dead,
               coalesce(v_d_why, 'no reason recorded')));
      RETURN NULL;
    END IF;
    INSERT INTO push.queue (push_id, app_id, platform, device_id, token,
      priority, not_before, expires_at, enqueued_at)
    VALUES (v_push.id, v_push.app_id, coalesce(v_d_plat, v_push.platform),
      v_d_id, CASE WHEN v_d_id IS NULL THEN v_push.token END,
      v_push.priority, coalesce(v_push.send_after, v_push.created_at),
      coalesce(v_push.expires_at,
               v_push.created_at + make_interval(secs => v_push.ttl)),
      v_push.created_at);
    PERFORM pg_notify('pgpush_enqueue', v_push.app_id::text);
    RETURN NULL;
  END IF;

  BEGIN
    -- One pass: resolve each push to its devices (a user fans out), check
    -- the push and each (push, device), then queue or finish each of them.
    -- A bad row makes push.reject_push raise, which aborts the statement.
    WITH resolved AS (
      -- device targets (and rows with several targets, rejected below)
      -- (the queue row of a device has no token of its own: the claim reads
      -- it from push.devices)
      SELECT p.*, d.id AS d_id, d.platform AS d_platform,
             d.invalidated_at AS d_invalidated_at,
             d.invalid_reason AS d_invalid_reason
      FROM new_pushes p
      LEFT JOIN push.devices d ON d.id = p.device_id AND d.app_id = p.app_id
      WHERE p.device_id IS NOT NULL
      UNION ALL
      -- (platform, token) targets, registered as a device or not
      SELECT p.*, d.id, d.platform, d.invalidated_at, d.invalid_reason
      FROM new_pushes p
      LEFT JOIN push.devices d
        ON d.app_id = p.app_id AND d.platform = p.platform
       AND d.token = p.token
      WHERE p.token IS NOT NULL AND p.device_id IS NULL
      UNION ALL
      -- user targets: every active device of the user, newest first
      SELECT p.*, d.id, d.platform, NULL, NULL
      FROM new_pushes p
      LEFT JOIN LATERAL (
        SELECT dv.id, dv.platform
        FROM push.devices dv
        WHERE dv.app_id = p.app_id AND dv.user_id = p.user_id
          AND dv.invalidated_at IS NULL
          AND (p.platform IS NULL OR dv.platform = p.platform)
        ORDER BY dv.last_seen_at DESC, dv.id DESC
        LIMIT CASE WHEN p.newest_device_only THEN 1 END
      ) d ON true
      WHERE p.user_id IS NOT NULL AND p.device_id IS NULL AND p.token IS NULL
      UNION ALL
      -- no target at all: kept only to be rejected below
      SELECT p.*, NULL, NULL, NULL, NULL
      FROM new_pushes p
      WHERE p.device_id IS NULL AND p.token IS NULL AND p.user_id IS NULL
    ), queued AS (
      -- The rare pushes that cannot be sent (invalidated device, user with
      -- no device) are finished right here by push.finish_unsendable(), so
      -- this one reader is all the set needs: it is never materialised.
      INSERT INTO push.queue (push_id, app_id, platform, device_id, token,
        priority, not_before, expires_at, enqueued_at)
      SELECT c.id, c.app_id, c.t_platform, c.d_id, c.token, c.priority,
        c.not_before, c.expires_at, c.created_at
      FROM (
          SELECT r.id, r.app_id, r.campaign_id, r.priority, r.created_at,
            t.platform AS t_platform, r.d_id,
            CASE WHEN r.d_id IS NULL THEN r.token END AS token,
            coalesce(r.send_after, r.created_at) AS not_before,
            coalesce(r.expires_at, r.created_at + make_interval(secs => r.ttl))
              AS expires_at,
            r.d_invalidated_at, r.d_invalid_reason,
            CASE
              WHEN r.d_invalidated_at IS NOT NULL THEN 'invalidated'
              WHEN r.user_id IS NOT NULL AND r.d_id IS NULL THEN 'no_device'
              ELSE 'queue'
            END AS fate,
            (x.problem IS NULL OR
             push.reject_push(x.problem, r.app_id, format('push %s', r.id)))
              AS ok
          FROM resolved r
          LEFT JOIN push.apps a ON a.id = r.app_id
          LEFT JOIN push.campaigns c ON c.id = r.campaign_id
          CROSS JOIN LATERAL (SELECT coalesce(r.d_platform, r.platform)
                              AS platform) t
          CROSS JOIN LATERAL (SELECT push.push_problem(r.app_id, r.device_id,
            r.platform, r.token, r.user_id, r.newest_device_only, r.payload,
            r.collapse_key, r.ttl, r.expires_at, r.idempotency_key,
            r.campaign_id, a.id, a.enabled, a.name, c.id, c.app_id,
            c.state::text, r.d_id, r.d_platform) AS problem) x
      ) c
      WHERE CASE WHEN NOT c.ok THEN false WHEN c.fate = 'queue' THEN true ELSE
        push.finish_unsendable(c.id, c.app_id, c.t_platform, c.d_id,
          c.campaign_id, c.created_at,
          CASE c.fate
            WHEN 'invalidated' THEN
              format('device invalidated at %s: %s', c.d_invalidated_at,
                     coalesce(c.d_invalid_reason, 'no reason recorded'))
            ELSE 'the user has no active device'
          END) END
      RETURNING app_id
    )
    SELECT string_agg(s.app_id::text, ',' ORDER BY s.app_id) INTO v_apps
    FROM (SELECT DISTINCT q.app_id FROM queued q) s;

    -- One NOTIFY for the whole statement; the payload (the apps with new
    -- work) is a hint, so a huge list is sent as '' ("look at all").
    IF v_apps IS NOT NULL THEN
      PERFORM pg_notify('pgpush_enqueue',
                        CASE WHEN length(v_apps) <= 4000 THEN v_apps ELSE ''
                        END);
    END IF;
  EXCEPTION WHEN check_violation THEN
    -- Re-raise push.reject_push's error from here, so the client sees the
    -- problem and not the text of the statement above as context.
    GET STACKED DIAGNOSTICS v_msg = MESSAGE_TEXT,
      v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
    RAISE EXCEPTION USING MESSAGE = v_msg, ERRCODE = 'check_violation',
      DETAIL = v_detail, HINT = v_hint;
  END;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION push.enqueue_pushes() IS
  'Statement trigger on push.pushes: validates every new row '
  '(push.push_problem), fans targets out to push.queue (one row per '
  'device), records unsendable pushes in push.deliveries (counted in '
  'push.stats_inbox), and sends one NOTIFY pgpush_enqueue per statement. '
  'A one-row statement with a device or token target takes a shorter path '
  'with the same rules.';

CREATE TRIGGER pushes_enqueue AFTER INSERT ON push.pushes
  REFERENCING NEW TABLE AS new_pushes
  FOR EACH STATEMENT EXECUTE FUNCTION push.enqueue_pushes();
