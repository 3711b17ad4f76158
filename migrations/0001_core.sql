-- Kite core: teams, keys, sources, and each team's event stream.

-- One row: instance-wide settings shared by every node (the admin token's hash).
CREATE TABLE kite_instance (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  admin_token_hash bytea
);
INSERT INTO kite_instance DEFAULT VALUES;

CREATE TABLE teams (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  -- The highest seq stored in this team. Appends lock this row until they commit, so seqs are
  -- handed out and committed in the same order (see docs/sequencing.md).
  head bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
  id uuid PRIMARY KEY,
  team_id bigint NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  name text NOT NULL,
  role text NOT NULL CHECK (role IN ('admin', 'agent')),
  -- sha256 of the key: keys are 256-bit random, so a fast hash is enough and lookups stay cheap.
  hash bytea NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);
-- A key's name is the agent's identity in `source` (…/agents/<name>): unique among live keys.
CREATE UNIQUE INDEX api_keys_live_name ON api_keys (team_id, name) WHERE revoked_at IS NULL;

CREATE TABLE sources (
  team_id bigint NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  name text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  provider text NOT NULL,
  secret text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (team_id, name)
);

CREATE TABLE events (
  team_id bigint NOT NULL REFERENCES teams (id),
  seq bigint NOT NULL,
  source text NOT NULL,
  id text NOT NULL,
  type text NOT NULL,
  time timestamptz NOT NULL,
  stored_at timestamptz NOT NULL DEFAULT now(),
  -- The structured CloudEvent exactly as served to listeners (json keeps the text verbatim).
  event json NOT NULL,
  PRIMARY KEY (team_id, seq),
  -- Dedup key, forever, across restarts and nodes.
  CONSTRAINT events_dedup UNIQUE (team_id, source, id)
);

-- Appends a batch of events (one group commit) in one round trip. For each input row, in order,
-- returns the seq it got, or the seq of the stored event it repeats (duplicate = true). Rows
-- repeating an earlier row of the same batch are duplicates of that row.
-- Team rows are locked in id order, so concurrent batches never deadlock and a seq is never
-- visible before every smaller seq of its team is.
CREATE FUNCTION kite_append_events(
  p_team bigint[], p_source text[], p_id text[], p_type text[], p_time timestamptz[], p_event json[]
) RETURNS TABLE (ord integer, seq bigint, duplicate boolean)
LANGUAGE plpgsql
-- Planning the statement below costs more than running it; its shape never needs a custom plan
-- (every lookup is an index probe), so plan it once per connection.
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
  PERFORM 1 FROM teams t WHERE t.id = ANY (p_team) ORDER BY t.id FOR NO KEY UPDATE;

  RETURN QUERY
  WITH input AS (
    SELECT i AS ord, p_team[i] AS team_id, p_source[i] AS source, p_id[i] AS id,
           p_type[i] AS type, p_time[i] AS time, p_event[i] AS event
    FROM generate_subscripts(p_team, 1) AS i
  ),
  firsts AS (
    SELECT DISTINCT ON (team_id, source, id) * FROM input ORDER BY team_id, source, id, ord
  ),
  -- LATERAL … LIMIT 1 forces one index probe per row: the planner cannot know the batch is small
  -- and would otherwise hash the whole events table.
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
  bumped AS (
    UPDATE teams t SET head = (SELECT max(f.seq) FROM fresh f WHERE f.team_id = t.id)
    WHERE t.id IN (SELECT team_id FROM fresh)
    RETURNING t.id
  ),
  keyed AS (
    SELECT team_id, source, id, seq, ord AS first_ord, false AS existed FROM fresh
    UNION ALL
    SELECT team_id, source, id, existing_seq, ord, true FROM looked WHERE existing_seq IS NOT NULL
  )
  SELECT i.ord::integer, k.seq, (k.existed OR i.ord <> k.first_ord)
  FROM input i
  JOIN keyed k ON k.team_id = i.team_id AND k.source = i.source AND k.id = i.id
  ORDER BY i.ord;

  -- Wake every node's listeners: payload "<team id>:<head>". Delivered at commit, never before.
  PERFORM pg_notify('kite_events', t.id || ':' || t.head) FROM teams t WHERE t.id = ANY (p_team);
END;
$$;
