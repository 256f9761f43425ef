-- 0007: values that become headers or URLs are checked at insert, payloads
-- nest at most 16 levels, and push.deliveries has its daily partitions
-- before the first dispatcher writes.
--
-- Header values. collapse_key becomes a header (apns-collapse-id, also in
-- FCM's APNs headers; X-WNS-Tag when it is 1-16 letters or digits): a CR
-- LF in it made the provider see a header of the inserter's choosing. It
-- now may hold no control character and no space at either end. The
-- override fields the senders turn into headers are checked against their
-- values (apns.push_type, apns.priority, wns.tag, wns.cache_policy), as
-- the senders already did; a WNS, MPNS or Web Push channel URL may hold
-- only visible ASCII after its host (push.token_problem(), which also
-- checks push.devices). The dispatcher checks the same again before it
-- builds a request (dispatcher/hdrcheck.c).
--
-- Depth. The dispatcher's JSON parser refuses documents nested deeper
-- than its limit (json-c's default 32), and such a payload passed the
-- insert checks only to fail as "payload is not a JSON object". The limit
-- is now 16 levels of objects and arrays, the payload itself the first,
-- checked at insert and matched by the dispatcher.
--
-- Partitions. A new database had no daily partition of push.deliveries, so
-- the first dispatcher's acks went to the default partition while its
-- first maintenance run attached today's partition; an ack that had chosen
-- the default partition before the attach then failed ('new row for
-- relation "deliveries_default" violates partition constraint'). The
-- partitions for today and partitions_ahead_days more are now made here,
-- and push.maintain_partitions() holds inserts into push.deliveries back
-- (EXCLUSIVE lock, after the ones in flight) while it attaches a day that
-- rows are being written for, or that has rows in the default partition.
-- Days further ahead, the usual case, are attached without that lock.

CREATE OR REPLACE FUNCTION push.token_problem(p_platform push.platform,
                                             p_token text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN p_token IS NULL OR p_token = '' THEN
      'token is empty'
    WHEN octet_length(p_token) > 2048 THEN
      'token is longer than 2048 bytes'
    WHEN p_platform = 'apns' AND p_token !~ '^[0-9A-Fa-f]{64,200}$' THEN
      'an APNs device token is 64 or more hexadecimal digits'
    WHEN p_platform = 'fcm' AND (length(p_token) < 16 OR
                                 p_token !~ '^[A-Za-z0-9_:.-]+$') THEN
      'an FCM registration token is 16 or more characters of '
      'A-Z a-z 0-9 _ : . -'
    -- Visible ASCII only after the host: the URL is sent as it is, so no
    -- space or control character may reach the request line.
    WHEN p_platform IN ('wns', 'mpns', 'webpush')
         AND p_token !~ '^https://[A-Za-z0-9.-]+(:[0-9]+)?/[!-~]*$'
    THEN
      CASE p_platform
        WHEN 'wns' THEN 'a WNS channel must be an https URL'
        WHEN 'mpns' THEN 'an MPNS channel must be an https URL'
        ELSE 'a Web Push endpoint must be an https URL'
      END
  END
$$;

CREATE OR REPLACE FUNCTION push.payload_problem(p jsonb) RETURNS text
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

CREATE OR REPLACE FUNCTION push.push_problem(
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

COMMENT ON COLUMN push.pushes.collapse_key IS
  'Pushes with the same key replace each other on the device (APNs '
  'collapse id: at most 64 bytes). Sent as a header: no control '
  'characters, no space at either end.';

CREATE OR REPLACE FUNCTION push.maintain_partitions(
  p_retention_days integer DEFAULT NULL,
  p_days_ahead integer DEFAULT NULL
) RETURNS TABLE (action text, object text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_keep  integer := coalesce(p_retention_days, (SELECT value::integer
            FROM push.settings WHERE name = 'history_retention_days'), 30);
  v_ahead integer := coalesce(p_days_ahead, (SELECT value::integer
            FROM push.settings WHERE name = 'partitions_ahead_days'), 3);
  v_day   date;
  v_name  text;
  v_part  record;
  v_cut   date;
  v_n     bigint;
BEGIN
  IF v_keep < 1 THEN
    RAISE EXCEPTION 'pgpush: retention must be at least 1 day, not %',
      v_keep;
  END IF;
  -- Serialise with other maintainers (one dispatcher at a time, or admin).
  PERFORM pg_advisory_xact_lock(hashtext('pgpush.maintain_partitions'));
  v_cut := (now() AT TIME ZONE 'UTC')::date - v_keep;

  -- Create today's and the coming days' partitions (UTC days). They are
  -- made ahead of time (the migration makes the first ones), so the rows
  -- the dispatchers write always have a daily partition waiting and the
  -- default partition stays empty.
  FOR i IN 0 .. v_ahead LOOP
    v_day := (now() AT TIME ZONE 'UTC')::date + i;
    v_name := 'deliveries_' || to_char(v_day, 'YYYYMMDD');
    CONTINUE WHEN to_regclass('push.' || v_name) IS NOT NULL;
    -- A day rows are being written for (today; tomorrow, for a clock a
    -- little ahead), or one that already has rows in the default
    -- partition: no insert into push.deliveries may be running while it
    -- is attached. An insert that chose the default partition by the old
    -- bounds would fail once the default partition's constraint changed
    -- ('new row for relation "deliveries_default" violates partition
    -- constraint'), and a row of the day written meanwhile would fail the
    -- attach. So first wait for the inserts in flight and hold new ones
    -- until commit (EXCLUSIVE blocks writers, not readers), then move the
    -- day's rows and attach. Days further ahead, the usual case, need no
    -- such lock: nothing is written for them.
    IF v_day <= (now() AT TIME ZONE 'UTC')::date + 1 OR EXISTS (
         SELECT 1 FROM push.deliveries_default
         WHERE finished_at >= (v_day::text || ' 00:00 UTC')::timestamptz
           AND finished_at < ((v_day + 1)::text || ' 00:00 UTC')::timestamptz)
    THEN
      LOCK TABLE push.deliveries IN EXCLUSIVE MODE;
    END IF;
    EXECUTE format('CREATE TABLE push.%I (LIKE push.deliveries '
                   'INCLUDING DEFAULTS)', v_name);
    -- Rows that already landed in the default partition move over first.
    EXECUTE format('WITH m AS (DELETE FROM push.deliveries_default WHERE '
      'finished_at >= %L::timestamptz AND finished_at < %L::timestamptz '
      'RETURNING *) INSERT INTO push.%I SELECT * FROM m',
      v_day::text || ' 00:00 UTC', (v_day + 1)::text || ' 00:00 UTC', v_name);
    EXECUTE format('ALTER TABLE push.deliveries ATTACH PARTITION push.%I '
      'FOR VALUES FROM (%L) TO (%L)', v_name,
      v_day::text || ' 00:00 UTC', (v_day + 1)::text || ' 00:00 UTC');
    action := 'created'; object := 'push.' || v_name;
    RETURN NEXT;
  END LOOP;

  -- Drop daily partitions that ended before the retention cut.
  FOR v_part IN
    SELECT c.relname FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'push.deliveries'::regclass
      AND c.relname ~ '^deliveries_[0-9]{8}$'
      AND to_date(substr(c.relname, 12), 'YYYYMMDD') < v_cut
    ORDER BY c.relname
  LOOP
    EXECUTE format('DROP TABLE push.%I', v_part.relname);
    action := 'dropped'; object := 'push.' || v_part.relname;
    RETURN NEXT;
  END LOOP;

  DELETE FROM push.deliveries_default
  WHERE finished_at < (v_cut::text || ' 00:00 UTC')::timestamptz;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  IF v_n > 0 THEN
    action := 'deleted'; object := v_n || ' rows of push.deliveries_default';
    RETURN NEXT;
  END IF;

  -- Pushes and idempotency keys age out with the history; a push still in
  -- the queue (paused app, far send_after) is kept.
  DELETE FROM push.pushes p
  WHERE p.created_at < (v_cut::text || ' 00:00 UTC')::timestamptz
    AND NOT EXISTS (SELECT 1 FROM push.queue q WHERE q.push_id = p.id);
  GET DIAGNOSTICS v_n = ROW_COUNT;
  IF v_n > 0 THEN
    action := 'deleted'; object := v_n || ' rows of push.pushes';
    RETURN NEXT;
  END IF;
  DELETE FROM push.idempotency_keys
  WHERE created_at < (v_cut::text || ' 00:00 UTC')::timestamptz;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  IF v_n > 0 THEN
    action := 'deleted'; object := v_n || ' rows of push.idempotency_keys';
    RETURN NEXT;
  END IF;
END $$;
COMMENT ON FUNCTION push.maintain_partitions(integer, integer) IS
  'Creates daily push.deliveries partitions for today and the next '
  'partitions_ahead_days (UTC), drops partitions older than the retention '
  '(history_retention_days unless given), and deletes expired pushes and '
  'idempotency keys. Returns what it did. Safe to run any time, by one '
  'session at a time, while dispatchers write: creating a partition for a '
  'day rows are written for (today, tomorrow) or that has rows in the '
  'default partition first waits for the inserts into push.deliveries in '
  'flight and holds new ones until commit, so none fails.';

-- Today's partition and the coming days' (this runs on a database that may
-- be in use: the function takes the lock it needs).
SELECT push.maintain_partitions();
