/**
 * A peer's row written straight into a test database, for tests of the outbox's SQL that need
 * peers to exist (foreign keys) but not the peers API: an https URL, one scope, empty limits.
 */
type Run = (sql: string, params: unknown[]) => Promise<unknown>;

export async function insertPeerRow(run: Run, peer: { id: string; teamId: number; instanceId: string; remoteTeam?: string; scopes?: string[] }): Promise<void> {
  await run(
    `INSERT INTO peers (id, team_id, instance_id, url, remote_team, scopes, max_hops, rate_limit, inbound_rate_limit, retry, outbound_key, inbound_key)
     VALUES ($1, $2, $3, 'https://b.example', $4, $5, 3, '{}', '{}', '{}', 'k1', 'k2')`,
    [peer.id, peer.teamId, peer.instanceId, peer.remoteTeam ?? 'acme', JSON.stringify(peer.scopes ?? ['x.*'])],
  );
}
