/**
 * A team's webhook sources, with an in-memory cache for ingest (a signed webhook must not cost a
 * database round trip just to find its secret). Every change NOTIFYs `kite_config` with
 * `source:<team id>:<name>` so every node drops its copy; after a lost notification connection
 * the whole cache is dropped.
 */
import { inTransaction, type Pool, type PoolClient } from '../db/pool.js';
import { KiteError } from '../errors.js';

export interface SourceRecord {
  readonly teamId: number;
  readonly name: string;
  readonly provider: string;
  readonly secret: string;
  readonly createdAt: string;
}

// A miss is remembered briefly so a flood of webhooks to a wrong URL cannot hammer Postgres.
const NEGATIVE_TTL_MS = 2000;

export class SourceRegistry {
  private readonly cache = new Map<string, SourceRecord | { missingUntil: number }>();

  constructor(private readonly pool: Pool) {}

  async find(teamId: number, name: string): Promise<SourceRecord | undefined> {
    const key = `${teamId}:${name}`;
    const cached = this.cache.get(key);
    if (cached) {
      if (!('missingUntil' in cached)) return cached;
      if (cached.missingUntil > Date.now()) return undefined;
    }
    const result = await this.pool.query<{ provider: string; secret: string; created_at: Date }>(
      'SELECT provider, secret, created_at FROM sources WHERE team_id = $1 AND name = $2',
      [teamId, name],
    );
    const row = result.rows[0];
    if (!row) {
      this.cache.set(key, { missingUntil: Date.now() + NEGATIVE_TTL_MS });
      return undefined;
    }
    const record = { teamId, name, provider: row.provider, secret: row.secret, createdAt: row.created_at.toISOString() };
    this.cache.set(key, record);
    return record;
  }

  async create(teamId: number, name: string, provider: string, secret: string): Promise<SourceRecord> {
    return this.changing(teamId, name, async (client) => {
      const result = await client.query<{ created_at: Date }>(
        `INSERT INTO sources (team_id, name, provider, secret) VALUES ($1, $2, $3, $4)
         ON CONFLICT (team_id, name) DO NOTHING RETURNING created_at`,
        [teamId, name, provider, secret],
      );
      const row = result.rows[0];
      if (!row) throw new KiteError('conflict', `Source ${JSON.stringify(name)} exists already.`);
      return { teamId, name, provider, secret, createdAt: row.created_at.toISOString() };
    });
  }

  async remove(teamId: number, name: string): Promise<void> {
    await this.changing(teamId, name, async (client) => {
      const result = await client.query('DELETE FROM sources WHERE team_id = $1 AND name = $2', [teamId, name]);
      if (result.rowCount === 0) throw new KiteError('not_found', `Source ${JSON.stringify(name)} does not exist.`);
    });
  }

  async list(teamId: number): Promise<SourceRecord[]> {
    const result = await this.pool.query<{ name: string; provider: string; created_at: Date }>(
      'SELECT name, provider, created_at FROM sources WHERE team_id = $1 ORDER BY name',
      [teamId],
    );
    return result.rows.map((r) => ({ teamId, name: r.name, provider: r.provider, secret: '', createdAt: r.created_at.toISOString() }));
  }

  /** Called for `kite_config` notifications `source:<team id>:<name>`. */
  invalidate(teamId: number, name: string): void {
    this.cache.delete(`${teamId}:${name}`);
  }

  invalidateAll(): void {
    this.cache.clear();
  }

  private async changing<T>(teamId: number, name: string, change: (client: PoolClient) => Promise<T>): Promise<T> {
    const result = await inTransaction(this.pool, async (client) => {
      const changed = await change(client);
      await client.query("SELECT pg_notify('kite_config', $1)", [`source:${teamId}:${name}`]);
      return changed;
    });
    this.invalidate(teamId, name);
    return result;
  }
}
