/**
 * Marks delivered batches for all of a node's actors, several in one statement.
 *
 * With many peers each request carries about one event, so each delivery was its own mark: its
 * own round trip, plan and commit. At 100 peers × 10 ev/s the marks were the largest user of
 * Postgres (5.6 s of statement time in 17 s, 0.4 ms each, half of it planning) and a third of a
 * node's statements. Like the queue reads (queue-reader.ts), they go together
 * (statement-batcher.ts).
 *
 * Only `delivered` marks come here; the others (a retry's count, a dead letter) stay with their
 * actor, fenced under a lock on its lease (peer-delivery.ts). A delivered mark does not lock the
 * leases it checks: a peer's 2xx makes "delivered" true whoever holds the lease by the time the
 * mark commits, and a new owner that read the rows before it did only sends them again, which
 * the receiver deduplicates. Locking several leases in one statement would also have to agree
 * on an order with the heartbeat's renewal of them all. The lease is still checked, at the
 * statement's snapshot: a mark whose fence is stale marks nothing and says so, and its actor
 * stops (LeaseLostError).
 */
import type { Pool } from '../db/pool.js';
import { StatementBatcher } from './statement-batcher.js';

export interface DeliveredMark {
  readonly peerId: string;
  /** The actor's lease fence: the mark applies only while the peer's lease carries it. */
  readonly fence: number;
  readonly ids: readonly number[];
  /** The peer's answer (2xx). */
  readonly statusCode: number | null;
}

export interface MarkResult {
  /** The lease carried the fence. */
  readonly owned: boolean;
  /** Rows that went from pending to delivered (rows no longer pending are left alone). */
  readonly marked: number;
}

const MAX_IN_FLIGHT = 2;
/** Delivery IDs per statement at most (one mark always goes, whatever its size). */
const MAX_IDS = 5_000;

/**
 * `$1`–`$3` one entry per mark (peer, fence, status code), `$4`/`$5` one per delivery ID with its
 * mark's number. The function (migration 0008) plans its statement once per connection and never
 * as a scan: planned at every execution, the statement's plan cost more than running it.
 */
export const MARK_DELIVERED = {
  name: 'kite_mark_delivered',
  text: 'SELECT n, owned, marked FROM kite_mark_delivered($1::uuid[], $2::bigint[], $3::int[], $4::bigint[], $5::int[])',
} as const;

export class DeliveredMarks {
  private readonly batcher: StatementBatcher<DeliveredMark, MarkResult>;

  constructor(private readonly pool: Pool) {
    this.batcher = new StatementBatcher({ maxInFlight: MAX_IN_FLIGHT, maxWeight: MAX_IDS, weight: (mark) => mark.ids.length, run: (batch) => this.run(batch) });
  }

  /** Marks one delivered batch; resolves once the statement that carried it committed. */
  mark(mark: DeliveredMark): Promise<MarkResult> {
    return this.batcher.submit(mark);
  }

  private async run(batch: readonly DeliveredMark[]): Promise<MarkResult[]> {
    const ids: number[] = [];
    const owners: number[] = [];
    batch.forEach((mark, i) => {
      for (const id of mark.ids) {
        ids.push(id);
        owners.push(i + 1);
      }
    });
    const result = await this.pool.query<{ n: number; owned: boolean; marked: number }>({
      ...MARK_DELIVERED,
      values: [batch.map((m) => m.peerId), batch.map((m) => m.fence), batch.map((m) => m.statusCode), ids, owners],
    });
    const byMark = new Map(result.rows.map((r) => [r.n, r]));
    return batch.map((_, i) => ({ owned: byMark.get(i + 1)?.owned ?? false, marked: byMark.get(i + 1)?.marked ?? 0 }));
  }
}
