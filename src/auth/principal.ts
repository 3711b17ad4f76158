/**
 * Who is calling, and what they may do. The admin token may do everything in every team; a team
 * key only in its own team, and an `agent` key only the agent routes (events, listen).
 */
import { KiteError } from '../errors.js';
import type { Pool } from '../db/pool.js';
import { bearerToken, hashSecret, sameHash } from './secrets.js';

export type Role = 'admin' | 'agent';

export type Principal =
  | { readonly kind: 'admin-token' }
  | { readonly kind: 'key'; readonly keyId: string; readonly teamId: number; readonly teamSlug: string; readonly name: string; readonly role: Role };

export class Authenticator {
  constructor(
    private readonly pool: Pool,
    private readonly adminTokenHash: () => Buffer,
  ) {}

  /** Resolves the caller; throws 401 when there is no valid credential. */
  async authenticate(headers: Readonly<Record<string, string>>, query?: URLSearchParams): Promise<Principal> {
    const token = bearerToken(headers, query);
    if (!token) throw new KiteError('unauthorized', 'Missing credentials: send Authorization: Bearer <key>.');
    const hash = hashSecret(token);
    if (sameHash(hash, this.adminTokenHash())) return { kind: 'admin-token' };
    const result = await this.pool.query<{ id: string; team_id: number; slug: string; name: string; role: Role }>(
      `SELECT k.id, k.team_id, t.slug, k.name, k.role
         FROM api_keys k JOIN teams t ON t.id = k.team_id
        WHERE k.hash = $1 AND k.revoked_at IS NULL`,
      [hash],
    );
    const row = result.rows[0];
    if (!row) throw new KiteError('unauthorized', 'Invalid or revoked credentials.');
    return { kind: 'key', keyId: row.id, teamId: row.team_id, teamSlug: row.slug, name: row.name, role: row.role };
  }
}

/** Throws 403 unless the principal may act in `team` with one of `roles`. */
export function authorizeTeam(principal: Principal, team: string, roles: readonly Role[]): void {
  if (principal.kind === 'admin-token') return;
  if (principal.teamSlug !== team) throw new KiteError('forbidden', 'This key belongs to another team.');
  if (!roles.includes(principal.role)) throw new KiteError('forbidden', `This route needs a key with role ${roles.join(' or ')}.`);
}

export function requireAdminToken(principal: Principal): void {
  if (principal.kind !== 'admin-token') throw new KiteError('forbidden', 'Only the instance admin token may do this.');
}

/** The `<key name>` part of an agent's event source; `admin` for the admin token. */
export function agentName(principal: Principal): string {
  return principal.kind === 'admin-token' ? 'admin' : principal.name;
}
