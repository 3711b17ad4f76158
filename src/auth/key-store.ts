/**
 * A team's API keys. Only a hash is stored; the key itself is returned once, on creation.
 * Revoking NOTIFYs `kite_config` with `key_revoked:<id>` so every node closes that key's
 * listeners at once (code 1008).
 */
import { randomUUID } from 'node:crypto';
import { inTransaction, type Pool } from '../db/pool.js';
import { KiteError } from '../errors.js';
import type { Role } from './principal.js';
import { generateApiKey, hashSecret } from './secrets.js';

export interface KeyRecord {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  readonly createdAt: string;
}

export class KeyStore {
  constructor(private readonly pool: Pool) {}

  async create(teamId: number, name: string, role: Role): Promise<KeyRecord & { key: string }> {
    const key = generateApiKey();
    const id = randomUUID();
    try {
      const result = await this.pool.query<{ created_at: Date }>(
        'INSERT INTO api_keys (id, team_id, name, role, hash) VALUES ($1, $2, $3, $4, $5) RETURNING created_at',
        [id, teamId, name, role, hashSecret(key)],
      );
      return { id, name, role, key, createdAt: result.rows[0]!.created_at.toISOString() };
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw new KiteError('conflict', `A key named ${JSON.stringify(name)} exists already in this team.`);
      throw err;
    }
  }

  async list(teamId: number): Promise<KeyRecord[]> {
    const result = await this.pool.query<{ id: string; name: string; role: Role; created_at: Date }>(
      'SELECT id, name, role, created_at FROM api_keys WHERE team_id = $1 AND revoked_at IS NULL ORDER BY created_at, name',
      [teamId],
    );
    return result.rows.map((r) => ({ id: r.id, name: r.name, role: r.role, createdAt: r.created_at.toISOString() }));
  }

  /** Which of these key ids are revoked (or gone). */
  async revokedAmong(ids: readonly string[]): Promise<string[]> {
    const result = await this.pool.query<{ id: string }>('SELECT id FROM api_keys WHERE id = ANY ($1::uuid[]) AND revoked_at IS NULL', [ids]);
    const live = new Set(result.rows.map((r) => r.id));
    return ids.filter((id) => !live.has(id));
  }

  async revoke(teamId: number, id: string): Promise<void> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) throw new KiteError('not_found', 'No such key.');
    await inTransaction(this.pool, async (client) => {
      const result = await client.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND team_id = $2 AND revoked_at IS NULL', [id, teamId]);
      if (result.rowCount === 0) throw new KiteError('not_found', 'No such key.');
      await client.query("SELECT pg_notify('kite_config', $1)", [`key_revoked:${id}`]);
    });
  }
}
