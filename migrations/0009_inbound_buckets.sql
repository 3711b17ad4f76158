-- The inbound rate limit (contract §5 "Receiving"), shared by every node of the instance.
--
-- Each node admits a peer's requests from its own bucket in memory (no round trip before the
-- append); it then takes the same tokens from the peer's row here, in the background and several
-- peers at once, and sets its bucket to the level the row has then. With N nodes behind a load
-- balancer that spreads a peer's requests, a node's bucket thus also counts what the others took:
-- the instance admits the peer's limit, give or take a request per node, instead of N times it.
-- The row refills from the database's clock, whichever node takes from it.

CREATE TABLE peer_inbound_buckets (
  peer_id uuid PRIMARY KEY REFERENCES peers (id),
  tokens double precision NOT NULL,
  refilled_at timestamptz NOT NULL
);

-- Takes `p_count[i]` tokens from peer `p_peer[i]`'s bucket (a new one starts full; the limit
-- comes with each call, so a PATCH of `inboundRateLimit` applies at once) and returns each
-- peer's level afterwards, possibly below zero. Rows are locked in peer order, so two nodes'
-- calls cannot deadlock. The commit does not wait for the WAL flush: a crash of the database can
-- only give back the last moments' tokens.
CREATE FUNCTION kite_inbound_take(p_peer uuid[], p_per_second double precision[], p_burst double precision[], p_count integer[])
RETURNS TABLE (peer_id uuid, tokens double precision)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_now timestamptz := clock_timestamp();
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  INSERT INTO peer_inbound_buckets (peer_id, tokens, refilled_at)
  SELECT DISTINCT ON (t.peer) t.peer, t.burst, v_now
    FROM unnest(p_peer, p_burst) AS t (peer, burst)
   ORDER BY t.peer
  ON CONFLICT (peer_id) DO NOTHING;
  PERFORM 1 FROM peer_inbound_buckets b WHERE b.peer_id = ANY (p_peer) ORDER BY b.peer_id FOR UPDATE;
  RETURN QUERY
  UPDATE peer_inbound_buckets b
     SET tokens = least(a.burst, b.tokens + greatest(0, extract(epoch FROM v_now - b.refilled_at)) * a.rate) - a.taken,
         refilled_at = v_now
    FROM (SELECT t.peer, max(t.rate) AS rate, max(t.burst) AS burst, sum(t.taken) AS taken
            FROM unnest(p_peer, p_per_second, p_burst, p_count) AS t (peer, rate, burst, taken)
           GROUP BY t.peer) a
   WHERE b.peer_id = a.peer
  RETURNING b.peer_id, b.tokens;
END;
$$;
