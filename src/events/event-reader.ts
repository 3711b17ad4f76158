/**
 * Reads a team's stream by seq. Because appends commit in seq order per team (see
 * docs/sequencing.md), "every row with seq > after" read at any moment has no holes: a reader
 * that has seen seq N has seen everything below it.
 */
import type { Pool } from '../db/pool.js';

export interface StoredEvent {
  readonly seq: number;
  readonly type: string;
  /** The structured CloudEvent JSON text, as stored. */
  readonly json: string;
  /** Set (ms since epoch) on events this node just committed, to measure broadcast lag. */
  readonly committedAt?: number;
}

export interface EventReader {
  readAfter(teamId: number, after: number, limit: number): Promise<StoredEvent[]>;
  readHead(teamId: number): Promise<number>;
  readHeads(teamIds: readonly number[]): Promise<Map<number, number>>;
}

export class PostgresEventReader implements EventReader {
  constructor(private readonly pool: Pool) {}

  async readAfter(teamId: number, after: number, limit: number): Promise<StoredEvent[]> {
    // Named: the broadcast hub runs this for every announced head, so plan it once per connection.
    const result = await this.pool.query<StoredEvent>({
      name: 'kite_events_after',
      text: 'SELECT seq, type, event::text AS json FROM events WHERE team_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
      values: [teamId, after, limit],
    });
    return result.rows;
  }

  /**
   * Like readAfter, keeping only types matching the patterns (already validated). The regex is
   * built by `kite_scopes_regex` (migration 0003), the rule of src/events/type-patterns.ts.
   */
  async readMatchingAfter(teamId: number, after: number, limit: number, patterns: readonly string[]): Promise<StoredEvent[]> {
    if (patterns.includes('*')) return this.readAfter(teamId, after, limit);
    const result = await this.pool.query<StoredEvent>(
      'SELECT seq, type, event::text AS json FROM events WHERE team_id = $1 AND seq > $2 AND type ~ kite_scopes_regex($4::jsonb) ORDER BY seq LIMIT $3',
      [teamId, after, limit, JSON.stringify(patterns)],
    );
    return result.rows;
  }

  async readHead(teamId: number): Promise<number> {
    const result = await this.pool.query<{ head: number }>('SELECT head FROM teams WHERE id = $1', [teamId]);
    return result.rows[0]?.head ?? 0;
  }

  async readHeads(teamIds: readonly number[]): Promise<Map<number, number>> {
    const result = await this.pool.query<{ id: number; head: number }>('SELECT id, head FROM teams WHERE id = ANY ($1::bigint[])', [teamIds]);
    return new Map(result.rows.map((r) => [r.id, r.head]));
  }
}
