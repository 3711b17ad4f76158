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
LANGUAGE plpgsql AS $$
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
  existing AS (
    SELECT f.team_id, f.source, f.id, e.seq
    FROM firsts f JOIN events e ON e.team_id = f.team_id AND e.source = f.source AND e.id = f.id
  ),
  fresh AS (
    SELECT f.*, t.head + row_number() OVER (PARTITION BY f.team_id ORDER BY f.ord) AS seq
    FROM firsts f JOIN teams t ON t.id = f.team_id
    WHERE NOT EXISTS (
      SELECT 1 FROM existing x WHERE x.team_id = f.team_id AND x.source = f.source AND x.id = f.id
    )
  ),
  inserted AS (
    INSERT INTO events (team_id, seq, source, id, type, time, event)
    SELECT team_id, seq, source, id, type, time, event FROM fresh
    RETURNING team_id
  ),
  bumped AS (
    UPDATE teams t SET head = m.head
    FROM (SELECT team_id, max(seq) AS head FROM fresh GROUP BY team_id) m
    WHERE t.id = m.team_id
    RETURNING t.id
  ),
  keyed AS (
    SELECT team_id, source, id, seq, ord AS first_ord, false AS existed FROM fresh
    UNION ALL
    SELECT x.team_id, x.source, x.id, x.seq, f.ord, true
    FROM existing x JOIN firsts f ON f.team_id = x.team_id AND f.source = x.source AND f.id = x.id
  )
  SELECT i.ord::integer, k.seq, (k.existed OR i.ord <> k.first_ord)
  FROM input i
  JOIN keyed k ON k.team_id = i.team_id AND k.source = i.source AND k.id = i.id
  ORDER BY i.ord;

  -- Wake every node's listeners: payload "<team id>:<head>". Delivered at commit, never before.
  PERFORM pg_notify('kite_events', t.id || ':' || t.head) FROM teams t WHERE t.id = ANY (p_team);
END;
$$;
