/**
 * Group commit: every event to store (webhooks, published events, later federation) is queued
 * here, and queued events are written together by one call of `kite_append_events` — one
 * round trip and one fsync for the whole batch instead of one per webhook.
 *
 * Modes: idle (nothing queued) → a flush starts on the next tick, gathering everything that
 * arrived in the same tick; while `maxInFlight` flushes run, new events wait and form the next
 * batch. A caller's promise settles only after its batch committed (or failed: then every caller
 * of that batch gets the error, and nothing of the batch is stored, as it was one transaction).
 *
 * `inTransaction` hooks run inside the batch's transaction after the events are stored (the
 * federation outbox writes its deliveries there), so an event and what it implies commit or roll
 * back together; the internal events a hook returns are appended in the same transaction.
 */
import { checkOut, isBrokenConnection, type Pool, type PoolClient } from '../db/pool.js';
import type { NormalizedEvent } from '../providers/types.js';

export interface AppendRequest {
  readonly teamId: number;
  readonly event: NormalizedEvent;
}

export interface AppendResult {
  readonly seq: number;
  readonly duplicate: boolean;
}

export interface CommittedEvent {
  readonly teamId: number;
  readonly seq: number;
  readonly type: string;
  readonly json: string;
  readonly committedAt: number;
}

interface Pending {
  readonly request: AppendRequest;
  resolve(result: AppendResult): void;
  reject(err: unknown): void;
}

export interface StoredInBatch {
  readonly teamId: number;
  readonly seq: number;
  readonly event: NormalizedEvent;
}

export interface TransactionHookResult {
  /** Internal events to append in the same transaction (never passed to hooks again). */
  readonly internal?: readonly AppendRequest[];
  /** Runs after the commit (e.g. waking the peers that got deliveries). */
  readonly afterCommit?: () => void;
}

export type TransactionHook = (client: PoolClient, stored: readonly StoredInBatch[]) => Promise<TransactionHookResult | undefined>;

export interface EventAppenderOptions {
  readonly inTransaction?: TransactionHook;
  readonly maxBatch?: number;
  readonly maxInFlight?: number;
  /** Sees every newly stored (non-duplicate) event, in seq order per team, right after commit. */
  readonly onCommitted?: (events: readonly CommittedEvent[]) => void;
  readonly onFlush?: (batchSize: number, seconds: number, ok: boolean) => void;
}

const APPEND_SQL = `SELECT ord, seq, duplicate
  FROM kite_append_events($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::json[])`;

export class EventAppender {
  private queue: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;

  constructor(
    private readonly pool: Pool,
    private readonly options: EventAppenderOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 1000;
    this.maxInFlight = options.maxInFlight ?? 2;
  }

  append(request: AppendRequest): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.schedule();
    });
  }

  appendMany(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    return Promise.all(requests.map((r) => this.append(r)));
  }

  /** Resolves when nothing is queued or in flight (graceful shutdown). */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.inFlight > 0) {
      await new Promise<void>((resolve) => this.drained.push(resolve));
    }
  }

  private drained: (() => void)[] = [];

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    this.scheduled = true;
    // setImmediate: gather everything that arrives in this turn of the event loop.
    setImmediate(() => {
      this.scheduled = false;
      while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        this.inFlight++;
        void this.flush(batch).finally(() => {
          this.inFlight--;
          if (this.queue.length > 0) this.schedule();
          else if (this.inFlight === 0) this.drained.splice(0).forEach((resolve) => resolve());
        });
      }
    });
  }

  private async flush(batch: Pending[]): Promise<void> {
    const started = performance.now();
    const held = await checkOut(this.pool).catch((err: unknown) => {
      for (const pending of batch) pending.reject(err);
      return undefined;
    });
    if (!held) {
      this.options.onFlush?.(batch.length, (performance.now() - started) / 1000, false);
      return;
    }
    const { client, release } = held;
    let rows: AppendRow[];
    let fresh: CommittedEvent[];
    let afterCommit: (() => void) | undefined;
    try {
      await client.query('BEGIN');
      rows = await append(client, batch.map((p) => p.request));
      const stored: StoredInBatch[] = [];
      for (const row of rows) if (!row.duplicate) stored.push({ ...batch[row.ord - 1]!.request, seq: row.seq });
      const committedAt = Date.now();
      fresh = stored.map(({ teamId, seq, event }) => ({ teamId, seq, type: event.type, json: event.json, committedAt }));
      const hooked = stored.length > 0 && this.options.inTransaction ? await this.options.inTransaction(client, stored) : undefined;
      if (hooked?.internal && hooked.internal.length > 0) {
        const internalRows = await append(client, hooked.internal);
        for (const row of internalRows) {
          const { teamId, event } = hooked.internal[row.ord - 1]!;
          if (!row.duplicate) fresh.push({ teamId, seq: row.seq, type: event.type, json: event.json, committedAt });
        }
      }
      afterCommit = hooked?.afterCommit;
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      release(isBrokenConnection(err) ? (err as Error) : undefined);
      this.options.onFlush?.(batch.length, (performance.now() - started) / 1000, false);
      for (const pending of batch) pending.reject(err);
      return;
    }
    release();
    this.options.onFlush?.(batch.length, (performance.now() - started) / 1000, true);
    for (const row of rows) batch[row.ord - 1]!.resolve({ seq: row.seq, duplicate: row.duplicate });
    afterCommit?.();
    if (fresh.length > 0 && this.options.onCommitted) {
      fresh.sort((a, b) => a.teamId - b.teamId || a.seq - b.seq);
      this.options.onCommitted(fresh);
    }
  }
}

interface AppendRow {
  ord: number;
  seq: number;
  duplicate: boolean;
}

async function append(client: PoolClient, requests: readonly AppendRequest[]): Promise<AppendRow[]> {
  const teams: number[] = [];
  const sources: string[] = [];
  const ids: string[] = [];
  const types: string[] = [];
  const times: string[] = [];
  const jsons: string[] = [];
  for (const { teamId, event } of requests) {
    teams.push(teamId);
    sources.push(event.source);
    ids.push(event.id);
    types.push(event.type);
    times.push(event.time);
    jsons.push(event.json);
  }
  const result = await client.query<AppendRow>(APPEND_SQL, [teams, sources, ids, types, times, jsons]);
  return result.rows;
}
