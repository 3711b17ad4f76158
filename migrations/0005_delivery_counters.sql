-- Delivery counters, so that reading a peer does not count every delivery it ever had.
--
-- `peers.delivered` and the per-minute history in `peer_delivery_minutes` are written by the
-- actor's fenced mark, in the statement that marks deliveries done (src/federation/peer-delivery.ts).
-- GET …/peers and the status page read them; a peer with millions of delivered events costs the
-- same to show as a new one. Minutes older than a day are swept by the nodes' heartbeat.

ALTER TABLE peers ADD COLUMN delivered bigint NOT NULL DEFAULT 0;

UPDATE peers p SET delivered = d.n
  FROM (SELECT peer_id, count(*) AS n FROM federation_deliveries WHERE status = 'delivered' GROUP BY peer_id) d
 WHERE d.peer_id = p.id;

CREATE TABLE peer_delivery_minutes (
  peer_id uuid NOT NULL REFERENCES peers (id),
  minute timestamptz NOT NULL,
  delivered integer NOT NULL,
  PRIMARY KEY (peer_id, minute)
);
CREATE INDEX peer_delivery_minutes_age ON peer_delivery_minutes (minute);

INSERT INTO peer_delivery_minutes (peer_id, minute, delivered)
SELECT peer_id, date_trunc('minute', delivered_at), count(*)
  FROM federation_deliveries
 WHERE status = 'delivered' AND delivered_at > now() - interval '1 day'
 GROUP BY 1, 2;
