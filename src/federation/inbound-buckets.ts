/**
 * The instance-wide side of the inbound limit (inbound-rate-limit.ts): one row per sending peer in
 * `peer_inbound_buckets` (migration 0009), refilled from the database's clock whichever node takes
 * from it. Takes of several peers go in one statement (statement-batcher.ts); each answers the
 * level its peer's row has afterwards.
 */
import type { Pool } from '../db/pool.js';
import type { SharedBuckets } from './inbound-rate-limit.js';
import type { RateLimit } from './peer-input.js';
import { StatementBatcher } from './statement-batcher.js';

interface SharedTake {
  readonly peerId: string;
  readonly limit: RateLimit;
  readonly count: number;
}

export class PostgresInboundBuckets implements SharedBuckets {
  private readonly batcher: StatementBatcher<SharedTake, number>;

  constructor(private readonly pool: Pool) {
    this.batcher = new StatementBatcher({ maxInFlight: 2, maxWeight: 1_000, weight: () => 1, run: (batch) => this.run(batch) });
  }

  take(peerId: string, limit: RateLimit, count: number): Promise<number> {
    return this.batcher.submit({ peerId, limit, count });
  }

  private async run(batch: readonly SharedTake[]): Promise<number[]> {
    const result = await this.pool.query<{ peer_id: string; tokens: number }>({
      name: 'kite_inbound_take',
      text: 'SELECT peer_id, tokens FROM kite_inbound_take($1::uuid[], $2::float8[], $3::float8[], $4::int[])',
      values: [batch.map((t) => t.peerId), batch.map((t) => t.limit.perSecond), batch.map((t) => t.limit.burst), batch.map((t) => t.count)],
    });
    const levels = new Map(result.rows.map((r) => [r.peer_id, r.tokens]));
    return batch.map((t) => levels.get(t.peerId) ?? Number.NaN);
  }
}
