-- The peer actors' two hottest statements, as functions whose plans are made once per connection.
--
-- With many peers each request carries about one event, so a node reads queues and marks
-- delivered batches hundreds of times a second (batched across actors: src/federation/
-- queue-reader.ts, delivered-marks.ts). Sent as statements, both were planned at every
-- execution: the queue read because its generic plan looks dearer than a custom one, the mark
-- because a named one kept the sequential scan it planned while the outbox was a few pages (a
-- fresh database) and scanned the whole outbox per mark as it grew. At 100 peers × 10 ev/s
-- planning took 3.3 s of Postgres time in 17 s: more than running them (1.7 s).
--
-- Here, as in kite_append_events (migration 0007), the plan is generic, made once per
-- connection, and may not scan a table: every row is reached through an index, whatever the
-- table's size when the plan was made.

CREATE FUNCTION kite_peer_queue_reads(p_peer uuid[], p_limit int[], p_after bigint[], p_excluded text[])
RETURNS TABLE (n integer, id bigint, event_seq bigint, event_id text, event_source text, event_type text, attempts integer, event_json text)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
BEGIN
  -- For each read, the head of the peer's partial index, then each event by its key. (Not a
  -- column named `json`: a keyword in Postgres 17's function signatures.)
  -- `excluded` is an array literal per read (`{1,2}`): unnest cannot carry a ragged array.
  RETURN QUERY
  SELECT r.n::int, d.id, d.event_seq, d.event_id, d.event_source, d.event_type, d.attempts, e.event_json
    FROM unnest(p_peer, p_limit, p_after, p_excluded) WITH ORDINALITY AS r (peer_id, lim, after_seq, excluded, n)
   CROSS JOIN LATERAL (
     SELECT f.id, f.team_id, f.event_seq, f.event_id, f.event_source, f.event_type, f.attempts
       FROM federation_deliveries f
      WHERE f.peer_id = r.peer_id AND f.status = 'pending' AND f.event_seq > r.after_seq
        AND NOT (f.id = ANY (r.excluded::bigint[]))
      ORDER BY f.event_seq LIMIT r.lim) d
   CROSS JOIN LATERAL (SELECT ev.event::text AS event_json FROM events ev WHERE ev.team_id = d.team_id AND ev.seq = d.event_seq) e
   ORDER BY r.n, d.event_seq;
END;
$$;

-- Marks delivered batches of several peers: `p_peer`, `p_fence`, `p_status` one entry per mark,
-- `p_ids` one per delivery with its mark's number in `p_mark`. A mark applies only while its
-- peer's lease carries its fence (checked, not locked: see delivered-marks.ts), and only to its
-- own peer's rows still pending. The peers' counters (migration 0005) take one row per peer.
CREATE FUNCTION kite_mark_delivered(p_peer uuid[], p_fence bigint[], p_status int[], p_ids bigint[], p_mark int[])
RETURNS TABLE (n integer, owned boolean, marked integer)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH input AS (
    SELECT * FROM unnest(p_peer, p_fence, p_status) WITH ORDINALITY AS r (peer_id, fence, status_code, n)
  ),
  owning AS (
    SELECT r.n FROM input r JOIN peer_leases l ON l.peer_id = r.peer_id AND l.fence = r.fence
  ),
  done AS (
    UPDATE federation_deliveries d
       SET status = 'delivered', attempts = d.attempts + 1, last_status_code = r.status_code, last_error = NULL,
           refused_alone = false, delivered_at = now()
      FROM unnest(p_ids, p_mark) AS i (id, n)
      JOIN input r ON r.n = i.n
     WHERE d.id = i.id AND d.peer_id = r.peer_id AND d.status NOT IN ('delivered', 'dead_lettered', 'discarded')
       AND r.n IN (SELECT o.n FROM owning o)
    RETURNING d.peer_id, i.n
  ),
  per_mark AS (SELECT x.n, count(*)::int AS c FROM done x GROUP BY x.n),
  per_peer AS (SELECT x.peer_id, count(*)::int AS c FROM done x GROUP BY x.peer_id),
  counted AS (
    UPDATE peers p SET delivered = p.delivered + c.c FROM per_peer c WHERE p.id = c.peer_id
  ),
  per_minute AS (
    INSERT INTO peer_delivery_minutes AS m (peer_id, minute, delivered)
    SELECT c.peer_id, date_trunc('minute', now()), c.c FROM per_peer c
    ON CONFLICT (peer_id, minute) DO UPDATE SET delivered = m.delivered + EXCLUDED.delivered
  )
  SELECT r.n::int, r.n IN (SELECT o.n FROM owning o), coalesce(pm.c, 0)
    FROM input r LEFT JOIN per_mark pm ON pm.n = r.n
   ORDER BY r.n;
END;
$$;
