-- 0005: a short path in the enqueue trigger for one-row statements.
--
-- Most applications enqueue one push per INSERT. push.enqueue_pushes() ran
-- one set-based statement for every statement, and for one row that
-- statement cost far more to start than to run: its plan is cached, but
-- its executor state (four target branches, the joins to apps, campaigns
-- and devices, the rules) is built at every call. Measured with pgbench
-- (4 clients, one-row device-targeted INSERTs, prepared), about 3,700
-- inserts/s before and 6,500 after.
--
-- The rules move, unchanged, into one SQL function, push.push_problem(),
-- called by the set-based statement (where it is inlined: bulk enqueues
-- cost what they cost before) and by the new one-row path: one lookup of
-- the app and the device or token, the campaign if there is one, the same
-- rules, one queue row, one NOTIFY. User targets (fan-out) and statements
-- of several rows take the set-based statement as before. A statement
-- whose rows were all skipped (repeated idempotency keys) now returns at
-- once.

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

CREATE OR REPLACE FUNCTION push.enqueue_pushes() RETURNS trigger
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

-- Called inside the enqueue trigger, as its owner: only admins (who may
-- run every function) get it besides.
REVOKE EXECUTE ON FUNCTION push.push_problem(integer, bigint, push.platform,
  text, text, boolean, jsonb, text, integer, timestamptz, text, bigint,
  integer, boolean, text, bigint, integer, text, bigint, push.platform)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION push.push_problem(integer, bigint, push.platform,
  text, text, boolean, jsonb, text, integer, timestamptz, text, bigint,
  integer, boolean, text, bigint, integer, text, bigint, push.platform)
  TO pgpush_admin;
