/**
 * Reads the head of peers' queues for all of a node's actors, several reads in one statement.
 *
 * With many peers each request carries about one event, and each read was its own round trip
 * through the pool (a third of a node's statements; pg's pool and protocol were ~25 % of its CPU
 * at 100 peers × 10 ev/s). An append's notification wakes the actors of all the peers it fed at
 * once, so their reads come together (statement-batcher.ts). The price: the reads of one
 * statement wait for its slowest, a queue whose index head is full of dead entries after a large
 * drain (~10 ms once, until Postgres has flagged them); the reads themselves stay per peer
 * (LATERAL … LIMIT).
 */
import type { Pool } from '../db/pool.js';
import { StatementBatcher } from './statement-batcher.js';

/** One queued delivery and its event's stored text. */
export interface QueueRow {
  id: number;
  event_seq: number;
  event_id: string;
  event_source: string;
  event_type: string;
  attempts: number;
  json: string;
}

export interface QueueRead {
  readonly peerId: string;
  readonly limit: number;
  /** Rows in flight, or delivered and still being marked: not read again. */
  readonly exclude: readonly number[];
  /** Read above this event seq (0: from the bottom of the queue). */
  readonly afterSeq: number;
}

const MAX_IN_FLIGHT = 2;
/**
 * Rows asked for per statement at most (one read always goes, whatever its limit): 200 busy peers
 * reading full batches of 500 at once would otherwise make one answer of 100 MB.
 */
const MAX_ROWS = 2_000;

/**
 * For each read, the head of the peer's partial index, then each event by its key: the function
 * (migration 0008) runs a plan that cannot become a scan of either table, however deep a queue,
 * made once per connection (sent as a statement, it was planned at every execution: its generic
 * plan looks dearer than a custom one, and planning cost three times running it). `excluded` is
 * an array literal per read (`{1,2}`): unnest cannot carry a ragged array of arrays.
 */
const READ = {
  name: 'kite_peer_queue_reads',
  text: `SELECT n, id, event_seq, event_id, event_source, event_type, attempts, event_json AS json
     FROM kite_peer_queue_reads($1::uuid[], $2::int[], $3::bigint[], $4::text[])`,
} as const;

export class QueueReader {
  private readonly batcher: StatementBatcher<QueueRead, QueueRow[]>;

  constructor(private readonly pool: Pool) {
    this.batcher = new StatementBatcher({ maxInFlight: MAX_IN_FLIGHT, maxWeight: MAX_ROWS, weight: (read) => read.limit, run: (batch) => this.run(batch) });
  }

  /** The head of one peer's queue, in event seq order. */
  read(read: QueueRead): Promise<QueueRow[]> {
    return this.batcher.submit(read);
  }

  private async run(batch: readonly QueueRead[]): Promise<QueueRow[][]> {
    const result = await this.pool.query<QueueRow & { n: number }>({
      ...READ,
      values: [batch.map((r) => r.peerId), batch.map((r) => r.limit), batch.map((r) => r.afterSeq), batch.map((r) => `{${r.exclude.join(',')}}`)],
    });
    const rows: QueueRow[][] = batch.map(() => []);
    for (const { n, ...row } of result.rows) rows[n - 1]!.push(row);
    return rows;
  }
}
