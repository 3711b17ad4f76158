-- Federation: a team's peers and the per-peer outbox of deliveries.

CREATE TABLE peers (
  id uuid PRIMARY KEY,
  team_id bigint NOT NULL REFERENCES teams (id),
  instance_id text NOT NULL CHECK (instance_id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  url text NOT NULL CHECK (url LIKE 'https://%'),
  remote_team text NOT NULL,
  scopes jsonb NOT NULL,
  max_hops integer NOT NULL CHECK (max_hops BETWEEN 1 AND 16),
  rate_limit jsonb NOT NULL,
  inbound_rate_limit jsonb NOT NULL,
  retry jsonb NOT NULL,
  enabled boolean NOT NULL DEFAULT true,
  -- Keys are needed in clear to sign and verify (HMAC). The previous key of a rotation stays
  -- valid for 24 hours after `*_rotated_at`.
  outbound_key text NOT NULL,
  outbound_key_previous text,
  outbound_key_rotated_at timestamptz,
  inbound_key text NOT NULL,
  inbound_key_previous text,
  inbound_key_rotated_at timestamptz,
  -- The peer actor's persisted state, so a restarted node resumes it.
  state text NOT NULL DEFAULT 'healthy' CHECK (state IN ('healthy', 'backing-off', 'rate-limited', 'dead-lettered')),
  attempts integer NOT NULL DEFAULT 0,
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- A deleted peer keeps its row so its delivered history stays readable.
  deleted_at timestamptz
);
CREATE UNIQUE INDEX peers_live_instance ON peers (team_id, instance_id) WHERE deleted_at IS NULL;

-- The outbox: one row per (event, peer), written in the transaction that stores the event.
-- A peer's queue is its `pending` rows in event seq order: seqs of a team commit in order (see
-- docs/sequencing.md), so reading by seq never skips a delivery that commits later.
CREATE TABLE federation_deliveries (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  peer_id uuid NOT NULL REFERENCES peers (id),
  team_id bigint NOT NULL,
  event_seq bigint NOT NULL,
  event_id text NOT NULL,
  event_source text NOT NULL,
  event_type text NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead_lettered', 'discarded')),
  attempts integer NOT NULL DEFAULT 0,
  last_status_code integer,
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz,
  FOREIGN KEY (team_id, event_seq) REFERENCES events (team_id, seq),
  UNIQUE (peer_id, event_seq)
);
CREATE INDEX federation_deliveries_queue ON federation_deliveries (peer_id, event_seq) WHERE status = 'pending';
CREATE INDEX federation_deliveries_held ON federation_deliveries (peer_id, event_seq) WHERE status = 'dead_lettered';
CREATE INDEX federation_deliveries_recent ON federation_deliveries (team_id, id DESC);
