/**
 * The reads of `peers` that PeerStore answers with: by id, by team (with delivery counts) and by
 * instance. Each takes the pool or, inside a change's transaction, its client.
 */
import type { Pool, PoolClient } from '../db/pool.js';
import { COLUMNS, COUNTS, PEER_ID, toCounted, toRecord, unknownPeer, type CountedRow, type PeerRecord, type PeerRow, type PeerWithCounts } from './peer-record.js';

type Queryable = Pool | PoolClient;

/** Any peer by id, deleted or not (a deleted one has `deletedAt`), for re-reading after a change. */
export async function findPeer(db: Queryable, id: string): Promise<PeerRecord | undefined> {
  if (!PEER_ID.test(id)) return undefined;
  const result = await db.query<PeerRow>(`SELECT ${COLUMNS} FROM peers p WHERE p.id = $1`, [id]);
  return result.rows[0] && toRecord(result.rows[0]);
}

/** The team's peers that are not deleted, enabled or paused (the forwarding rule's peers). */
export async function listLivePeers(db: Queryable, teamId: number): Promise<PeerRecord[]> {
  const result = await db.query<PeerRow>(
    `SELECT ${COLUMNS} FROM peers p WHERE p.team_id = $1 AND p.deleted_at IS NULL ORDER BY p.created_at, p.id`, [teamId]);
  return result.rows.map(toRecord);
}

export async function findLivePeerByInstance(db: Queryable, teamId: number, instanceId: string): Promise<PeerRecord | undefined> {
  const result = await db.query<PeerRow>(
    `SELECT ${COLUMNS} FROM peers p WHERE p.team_id = $1 AND p.instance_id = $2 AND p.deleted_at IS NULL`, [teamId, instanceId]);
  return result.rows[0] && toRecord(result.rows[0]);
}

export async function listWithCounts(db: Queryable, teamId: number): Promise<PeerWithCounts[]> {
  const result = await db.query<CountedRow>(
    `SELECT ${COLUMNS}, c.* FROM peers p ${COUNTS}
      WHERE p.team_id = $1 AND p.deleted_at IS NULL ORDER BY p.created_at, p.id`, [teamId]);
  return result.rows.map(toCounted);
}

/** A live peer of the team; 404 when unknown, deleted or another team's. */
export async function getWithCounts(db: Queryable, teamId: number, id: string): Promise<PeerWithCounts> {
  if (!PEER_ID.test(id)) throw unknownPeer(id);
  const result = await db.query<CountedRow>(
    `SELECT ${COLUMNS}, c.* FROM peers p ${COUNTS}
      WHERE p.id = $1 AND p.team_id = $2 AND p.deleted_at IS NULL`, [id, teamId]);
  if (!result.rows[0]) throw unknownPeer(id);
  return toCounted(result.rows[0]);
}

/** True for a peer of the team, deleted ones included (their history stays readable). */
export async function existsInTeam(db: Queryable, teamId: number, id: string): Promise<boolean> {
  if (!PEER_ID.test(id)) return false;
  const result = await db.query('SELECT 1 FROM peers WHERE id = $1 AND team_id = $2', [id, teamId]);
  return result.rows.length > 0;
}
