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

-- The append function, kite_append_events, is defined in 0003_append_with_outbox.sql.
