-- The append function's cost no longer grows with history, and less per event.
--
-- - The peers to wake were found by a second query, `federation_deliveries.event_seq > head`. The
--   function's plans are generic (planned once per connection, without the values), and for an
--   inequality on an unknown value the planner assumes a third of the table matches: once
--   analyzed with many rows, that plan scans every delivery ever stored, on every append
--   (300,000 deliveries: 81 ms per call). They now come from the outbox's RETURNING.
-- - An event's JSON was parsed three times for provenance members most events do not have: now
--   not at all when its text cannot hold them, else once.
-- - Every event was matched against every peer's scope patterns (below: peer_scope_types).
-- - Each delivery row's foreign key to `events` ran a trigger that locks the event's row. The
--   key goes: deliveries are inserted only here, in the statement that inserts their events, and
--   Kite never deletes an event. So does the index `(team_id, event_seq)`, which nothing reads
--   any more.
--
-- The rest is migration 0006's function.

ALTER TABLE federation_deliveries DROP CONSTRAINT federation_deliveries_team_id_event_seq_fkey;
-- Its only reader was the query that found the peers to wake (and the key just dropped): one
-- index entry less for every delivery stored and every delivery marked.
DROP INDEX federation_deliveries_event;

-- A peer's scopes without `*` as rows: the forwarding rule finds a type's peers by equality
-- (an index probe per event) instead of matching every event against every peer's patterns —
-- with 1,000 peers that was 0.6 ms of Postgres CPU per event, under the team's lock. A pattern
-- matches the type itself or the type with a leading `com.` (src/events/type-patterns.ts), so
-- each exact pattern stands twice. Kept by a trigger on peers; only patterns with `*` are still
-- matched with LIKE (`peers.scope_wild`, NULL when there are none).
CREATE TABLE peer_scope_types (
  team_id bigint NOT NULL,
  type text NOT NULL,
  peer_id uuid NOT NULL REFERENCES peers (id),
  PRIMARY KEY (team_id, type, peer_id)
);

CREATE FUNCTION kite_scope_exact_types(p_scopes jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT t), '{}') FROM (
    SELECT pattern AS t FROM jsonb_array_elements_text(p_scopes) AS pattern WHERE strpos(pattern, '*') = 0
    UNION ALL
    SELECT 'com.' || pattern FROM jsonb_array_elements_text(p_scopes) AS pattern WHERE strpos(pattern, '*') = 0
  ) types
$$;

CREATE FUNCTION kite_scope_wild_likes(p_scopes jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT array_agg(l) FROM (
    SELECT replace(replace(pattern, '_', '\_'), '*', '%') AS l FROM jsonb_array_elements_text(p_scopes) AS pattern WHERE strpos(pattern, '*') > 0
    UNION ALL
    SELECT 'com.' || replace(replace(pattern, '_', '\_'), '*', '%') FROM jsonb_array_elements_text(p_scopes) AS pattern WHERE strpos(pattern, '*') > 0
  ) likes
$$;

ALTER TABLE peers ADD COLUMN scope_wild text[] GENERATED ALWAYS AS (kite_scope_wild_likes(scopes)) STORED;
CREATE INDEX peers_wild_scopes ON peers (team_id) WHERE scope_wild IS NOT NULL AND deleted_at IS NULL;

CREATE FUNCTION kite_peer_scope_types_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM peer_scope_types WHERE peer_id = NEW.id;
  INSERT INTO peer_scope_types (team_id, type, peer_id)
  SELECT NEW.team_id, t, NEW.id FROM unnest(kite_scope_exact_types(NEW.scopes)) AS t;
  RETURN NULL;
END;
$$;

CREATE TRIGGER peers_scope_types AFTER INSERT OR UPDATE OF scopes, team_id ON peers
FOR EACH ROW EXECUTE FUNCTION kite_peer_scope_types_sync();

INSERT INTO peer_scope_types (team_id, type, peer_id)
SELECT p.team_id, t, p.id FROM peers p CROSS JOIN LATERAL unnest(kite_scope_exact_types(p.scopes)) AS t;

-- The rule's earlier forms, which nothing reads any more and every peer write recomputed: 0003's
-- regex column and 0006's LIKE column. (kite_scopes_regex stays: the GET events filter uses it.)
ALTER TABLE peers DROP COLUMN scope_regex, DROP COLUMN scope_likes;
DROP FUNCTION kite_scopes_likes(jsonb);

-- The events come as one JSON array (p_events) instead of a json[]: the client then sends the
-- texts as they are, where an array literal had every quote in every event escaped (9 % of a
-- receiving node's CPU draining a backlog), and Postgres parses the same bytes either way.
DROP FUNCTION kite_append_events(bigint[], text[], text[], text[], timestamptz[], json[], text, text);

CREATE FUNCTION kite_append_events(
  p_team bigint[], p_source text[], p_id text[], p_type text[], p_time timestamptz[], p_events json,
  p_self text, p_fed_source text
) RETURNS TABLE (ord integer, seq bigint, duplicate boolean)
LANGUAGE plpgsql
-- Planning the statements costs more than running them, and every lookup is an index probe
-- whatever the values: plan once per connection. That plan is made with the statistics of its
-- moment — a connection opened before 1,000 peers were added planned sequential scans of tables
-- that were small then (541 ms per 100 events until an ANALYZE) — so scans are ruled out: every
-- table here is meant to be reached through an index.
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
  v_teams bigint[];
  v_peers text;
  v_ord integer[];
  v_seq bigint[];
  v_duplicate boolean[];
BEGIN
  -- Lock the teams in id order (no deadlocks).
  SELECT array_agg(t.id ORDER BY t.id) INTO v_teams
  FROM (SELECT id FROM teams WHERE id = ANY (p_team) ORDER BY id FOR NO KEY UPDATE) t;

  WITH input AS (
    SELECT e.i::integer AS ord, p_team[e.i] AS team_id, p_source[e.i] AS source, p_id[e.i] AS id,
           p_type[e.i] AS type, p_time[e.i] AS time, e.event
    FROM json_array_elements(p_events) WITH ORDINALITY AS e (event, i)
  ),
  firsts AS (
    SELECT DISTINCT ON (team_id, source, id) * FROM input ORDER BY team_id, source, id, ord
  ),
  -- LATERAL … LIMIT 1 forces one index probe per row: the planner cannot know the batch is small.
  looked AS (
    SELECT f.*, x.seq AS existing_seq, h.head
    FROM firsts f
    CROSS JOIN LATERAL (SELECT t.head FROM teams t WHERE t.id = f.team_id) h
    LEFT JOIN LATERAL (
      SELECT e.seq FROM events e
      WHERE e.team_id = f.team_id AND e.source = f.source AND e.id = f.id
      LIMIT 1
    ) x ON true
  ),
  fresh AS (
    SELECT l.*, l.head + row_number() OVER (PARTITION BY l.team_id ORDER BY l.ord) AS seq
    FROM looked l
    WHERE l.existing_seq IS NULL
  ),
  inserted AS (
    INSERT INTO events (team_id, seq, source, id, type, time, event)
    SELECT team_id, seq, source, id, type, time, event FROM fresh
    RETURNING team_id
  ),
  -- Each new event's provenance: hops, origin and chain. Most events have none: a text that does
  -- not contain `kitefed` has no such member, unless a key is spelled with \u escapes, so only an
  -- event with either is parsed — once, for the three members (json_to_record; a jsonb cast would
  -- refuse a \u0000 anywhere in the event).
  provenance AS MATERIALIZED (
    SELECT f.team_id, f.seq, f.id, f.source, f.type,
           coalesce(p.kitefedhops, 0) AS hops,
           coalesce(p.kitefedorigin, '') AS origin,
           p.kitefedchain::jsonb AS chain
    FROM fresh f
    CROSS JOIN LATERAL json_to_record(
      CASE WHEN strpos(f.event::text, 'kitefed') > 0 OR strpos(f.event::text, '\u') > 0 THEN f.event ELSE '{}' END
    ) AS p (kitefedhops integer, kitefedorigin text, kitefedchain text)
    WHERE f.type NOT LIKE 'kite.%'
  ),
  -- In scope: by an exact pattern (an index probe per event), or by a pattern with `*` (LIKE,
  -- only against the peers that have one); a peer matched both ways counts once.
  --
  -- Every lookup is a LATERAL subquery behind a fence (OFFSET 0, LIMIT 1), so it runs per event
  -- through its index, in that direction. The plans are generic: CTEs are estimated at one row,
  -- so left to itself the planner joined these the other way round — every peer of the team,
  -- and for each one the whole set of matches again (1,000 peers and 100 events: 560 ms), or two
  -- CTEs in a nested loop (500 events: 68 of the statement's 75 ms).
  matched AS MATERIALIZED (
    SELECT f.team_id, f.seq, f.id, f.source, f.type, f.hops, f.origin, f.chain, s.peer_id
    FROM provenance f
    CROSS JOIN LATERAL (
      SELECT s.peer_id FROM peer_scope_types s WHERE s.team_id = f.team_id AND s.type = f.type OFFSET 0
    ) s
    UNION ALL
    SELECT f.team_id, f.seq, f.id, f.source, f.type, f.hops, f.origin, f.chain, w.peer_id
    FROM provenance f
    CROSS JOIN LATERAL (
      SELECT p.id AS peer_id FROM peers p
      WHERE p.team_id = f.team_id AND p.scope_wild IS NOT NULL AND p.deleted_at IS NULL
        AND f.type LIKE ANY (p.scope_wild)
        AND NOT EXISTS (SELECT 1 FROM peer_scope_types s WHERE s.team_id = f.team_id AND s.type = f.type AND s.peer_id = p.id)
      OFFSET 0
    ) w
  ),
  -- The forwarding rule: not internal, in scope, peer not the origin nor in the chain.
  targets AS (
    SELECT m.team_id, m.seq, m.id, m.source, m.type, p.id AS peer_id, p.instance_id, p.max_hops,
           p.state = 'dead-lettered' AS holding, m.hops
    FROM matched m
    CROSS JOIN LATERAL (SELECT * FROM peers p WHERE p.id = m.peer_id AND p.deleted_at IS NULL LIMIT 1) p
    WHERE m.origin <> p.instance_id
      AND NOT coalesce(m.chain ? p.instance_id, false)
  ),
  outbox AS (
    INSERT INTO federation_deliveries (peer_id, team_id, event_seq, event_id, event_source, event_type, status)
    SELECT peer_id, team_id, seq, id, source, type, CASE WHEN holding THEN 'dead_lettered' ELSE 'pending' END
    FROM targets WHERE hops < max_hops
    RETURNING peer_id
  ),
  -- Hop-limit drops: one internal event each, numbered after the batch's own events.
  dropped AS (
    SELECT t.*, f.seq AS batch_head,
           row_number() OVER (PARTITION BY t.team_id ORDER BY t.seq, t.peer_id) AS n
    FROM targets t
    JOIN (SELECT team_id, max(seq) AS seq FROM fresh GROUP BY team_id) f ON f.team_id = t.team_id
    WHERE t.hops >= t.max_hops
  ),
  internal AS (
    INSERT INTO events (team_id, seq, source, id, type, time, event)
    SELECT d.team_id, d.batch_head + d.n, p_fed_source, u.id, 'kite.federation.delivery_failed', now(),
           json_build_object(
             'specversion', '1.0', 'id', u.id, 'source', p_fed_source,
             'type', 'kite.federation.delivery_failed',
             'time', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
             'datacontenttype', 'application/json',
             'data', json_build_object(
               'peerId', d.peer_id, 'instanceId', d.instance_id, 'eventId', d.id, 'eventSource', d.source,
               'eventType', d.type, 'reason', 'hop_limit', 'statusCode', NULL, 'attempts', 0))
    FROM dropped d CROSS JOIN LATERAL (SELECT gen_random_uuid()::text AS id) u
    RETURNING team_id, seq
  ),
  bumped AS (
    UPDATE teams t SET head = greatest(
      (SELECT max(f.seq) FROM fresh f WHERE f.team_id = t.id),
      (SELECT max(d.batch_head + d.n) FROM dropped d WHERE d.team_id = t.id))
    WHERE t.id IN (SELECT team_id FROM fresh)
    RETURNING t.id
  ),
  keyed AS (
    SELECT team_id, source, id, seq, ord AS first_ord, false AS existed FROM fresh
    UNION ALL
    SELECT team_id, source, id, existing_seq, ord, true FROM looked WHERE existing_seq IS NOT NULL
  ),
  answer AS (
    SELECT i.ord::integer AS ord, k.seq, (k.existed OR i.ord <> k.first_ord) AS duplicate
    FROM input i
    JOIN keyed k ON k.team_id = i.team_id AND k.source = i.source AND k.id = i.id
  )
  -- The peers to wake come from the outbox's own RETURNING: migration 0006 found them with a
  -- second query on `event_seq > head`, whose generic plan scanned every delivery ever stored.
  SELECT (SELECT array_agg(a.ord ORDER BY a.ord) FROM answer a),
         (SELECT array_agg(a.seq ORDER BY a.ord) FROM answer a),
         (SELECT array_agg(a.duplicate ORDER BY a.ord) FROM answer a),
         (SELECT string_agg(DISTINCT o.peer_id::text, ',') FROM outbox o)
  INTO v_ord, v_seq, v_duplicate, v_peers;

  -- Wake every node: listeners ("<team id>:<head>") and the actors of peers that got deliveries.
  -- Both are delivered at commit, never before.
  PERFORM pg_notify('kite_events', t.id || ':' || t.head) FROM teams t WHERE t.id = ANY (v_teams);
  IF v_peers IS NOT NULL THEN
    -- A notification carries at most 8000 bytes: past that, wake every peer actor.
    PERFORM pg_notify('kite_federation', CASE WHEN length(v_peers) > 7900 THEN '*' ELSE v_peers END);
  END IF;

  RETURN QUERY SELECT * FROM unnest(v_ord, v_seq, v_duplicate);
END;
$$;
