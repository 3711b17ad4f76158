-- Cluster mode: every enabled peer has exactly one owner node at a time (docs/operations.md).
--
-- A node announces itself in `kite_nodes` and renews its row with its leases; the number of live
-- nodes sets each node's fair share of the peers. A lease names its owner node and carries a
-- fencing token, a fresh number from `peer_lease_fence` on every claim: the writes of a peer's
-- actor (marking deliveries, holding them, recording its state) succeed only while the lease
-- still carries the token the actor was started with, so an owner that paused past its expiry
-- and was replaced cannot act on stale state.

CREATE TABLE kite_nodes (
  node_id text PRIMARY KEY,
  started_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);

CREATE SEQUENCE peer_lease_fence;

CREATE TABLE peer_leases (
  peer_id uuid PRIMARY KEY REFERENCES peers (id),
  node_id text NOT NULL,
  fence bigint NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX peer_leases_node ON peer_leases (node_id);
