/**
 * Outbox rows written straight into a test database, for tests of the outbox's SQL that need
 * peers, events and deliveries to exist (foreign keys) but not the APIs that make them.
 */
type Run = (sql: string, params: unknown[]) => Promise<unknown>;

/** A peer's row: an https URL, its scopes (`x.*` unless given), empty limits. */
export async function insertPeerRow(run: Run, peer: { id: string; teamId: number; instanceId: string; remoteTeam?: string; scopes?: string[] }): Promise<void> {
  await run(
    `INSERT INTO peers (id, team_id, instance_id, url, remote_team, scopes, max_hops, rate_limit, inbound_rate_limit, retry, outbound_key, inbound_key)
     VALUES ($1, $2, $3, 'https://b.example', $4, $5, 3, '{}', '{}', '{}', 'k1', 'k2')`,
    [peer.id, peer.teamId, peer.instanceId, peer.remoteTeam ?? 'acme', JSON.stringify(peer.scopes ?? ['x.*'])],
  );
}

/**
 * Events 1…`count` of type `x.y` in the team, event n with one delivery to `peers[n % peers.length]`,
 * pending, or delivered for every `deliveredEvery`-th event.
 */
export async function insertEventsWithDeliveries(run: Run, options: { teamId: number; count: number; peers: readonly string[]; deliveredEvery?: number }): Promise<void> {
  await run(
    `INSERT INTO events (team_id, seq, source, id, type, time, event)
     SELECT $1, g, '/s', 'e' || g, 'x.y', now(), json_build_object('specversion', '1.0', 'id', 'e' || g, 'source', '/s', 'type', 'x.y')
       FROM generate_series(1, $2::int) g`,
    [options.teamId, options.count],
  );
  await run(
    `INSERT INTO federation_deliveries (peer_id, team_id, event_seq, event_id, event_source, event_type, status)
     SELECT ($3::uuid[])[g % cardinality($3::uuid[]) + 1], $1, g, 'e' || g, '/s', 'x.y',
            CASE WHEN $4::int > 0 AND g % $4::int = 0 THEN 'delivered' ELSE 'pending' END
       FROM generate_series(1, $2::int) g`,
    [options.teamId, options.count, options.peers, options.deliveredEvery ?? 0],
  );
}
