/**
 * Team slugs ↔ ids. Teams are never deleted or renamed in v1, so a found team is cached for the
 * life of the process; a miss is always asked again (the team may have just been created).
 */
import type { Pool } from '../db/pool.js';
import { KiteError } from '../errors.js';

export const TEAM_SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;

export class TeamDirectory {
  private readonly ids = new Map<string, number>();

  constructor(private readonly pool: Pool) {}

  /** The team's id, or undefined when it does not exist. */
  async find(slug: string): Promise<number | undefined> {
    const cached = this.ids.get(slug);
    if (cached !== undefined) return cached;
    if (!TEAM_SLUG.test(slug)) return undefined;
    const result = await this.pool.query<{ id: number }>('SELECT id FROM teams WHERE slug = $1', [slug]);
    const id = result.rows[0]?.id;
    if (id !== undefined) this.ids.set(slug, id);
    return id;
  }

  async require(slug: string): Promise<number> {
    const id = await this.find(slug);
    if (id === undefined) throw new KiteError('not_found', `Team ${JSON.stringify(slug)} does not exist.`);
    return id;
  }

  /** Creates a team; throws 409 when the slug is taken. */
  async create(slug: string): Promise<number> {
    const result = await this.pool.query<{ id: number }>(
      'INSERT INTO teams (slug) VALUES ($1) ON CONFLICT (slug) DO NOTHING RETURNING id',
      [slug],
    );
    const id = result.rows[0]?.id;
    if (id === undefined) throw new KiteError('conflict', `Team ${JSON.stringify(slug)} exists already.`);
    this.ids.set(slug, id);
    return id;
  }

  async list(): Promise<{ id: number; slug: string; createdAt: string }[]> {
    const result = await this.pool.query<{ id: number; slug: string; created_at: Date }>('SELECT id, slug, created_at FROM teams ORDER BY slug');
    return result.rows.map((r) => ({ id: r.id, slug: r.slug, createdAt: r.created_at.toISOString() }));
  }
}
