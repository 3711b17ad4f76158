/**
 * Group commit: every event to store (webhooks, published events, later federation) is queued
 * here, and queued events are written together by one call of `kite_append_events` — one
 * round trip and one fsync for the whole batch instead of one per webhook.
 *
 * Modes: idle (nothing queued) → a flush starts on the next tick, gathering everything that
 * arrived in the same tick; while a team's flush runs, that team's new events wait and form its
 * next batch (other teams' events may flush meanwhile, up to `maxInFlight` flushes). A caller's
 * promise settles only after its batch committed (or failed: then every caller of that batch gets
 * the error, and nothing of the batch is stored, as it was one transaction).
 *
 * One flush per team at a time, unless the team's queue is deep: the append function locks the
 * team's row until it commits, so a second flush of the same team can only wait for that lock.
 * With a few events queued that is a loss — a connection held, and the function's fixed cost
 * (about 0.5 ms of Postgres CPU) paid for a batch of one: four single-event flushes queued on one
 * team's lock cost 0.85 core of Postgres at 1,000 webhooks/s. With dozens queued it is a gain: the
 * next batches are sent and parsed while the first runs and take the lock the moment it is free,
 * where a lone flush leaves the lock idle for a round trip and a turn of a busy event loop between
 * batches (100 peers at 10,000 ev/s offered, A stored 3,000/s with one flush per team at most, 4,200
 * with two from 200 queued, 5,600–6,000 with up to four from 50).
 *
 * The append function (migration 0003, last rewritten by 0007) also writes the federation outbox
 * and the hop-limit events in the same statement, so one batch is one round trip and one
 * transaction.
 */
import type { Pool, PoolClient } from '../db/pool.js';
import { isRefusedValue } from '../errors.js';
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
  /** The events of one appendMany (one webhook or received batch) share this: never split. */
  readonly group: object | undefined;
  resolve(result: AppendResult): void;
  reject(err: unknown): void;
}

export interface EventAppenderOptions {
  /** This instance's ID and the source of its internal events, for the forwarding rule. */
  readonly selfInstanceId: string;
  readonly federationSource: string;
  readonly maxBatch?: number;
  readonly maxInFlight?: number;
  /** Sees every newly stored (non-duplicate) event, in seq order per team, right after commit. */
  readonly onCommitted?: (events: readonly CommittedEvent[]) => void;
  readonly onFlush?: (batchSize: number, seconds: number, ok: boolean) => void;
}

/** Queued events of one team from which more flushes of it may wait on its lock (see the header). */
const PIPELINE_DEPTH = 50;

const APPEND_SQL = `SELECT ord, seq, duplicate
  FROM kite_append_events($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::json, $7, $8)`;

export class EventAppender {
  private queue: Pending[] = [];
  private inFlight = 0;
  /** Flushes running per team (absent: none). */
  private readonly running = new Map<number, number>();
  /** Events queued per team, to tell a deep queue from a shallow one. */
  private readonly queued = new Map<number, number>();
  private scheduled = false;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;

  constructor(
    private readonly pool: Pool,
    private readonly options: EventAppenderOptions,
  ) {
    this.maxBatch = options.maxBatch ?? 1000;
    this.maxInFlight = options.maxInFlight ?? 4;
  }

  append(request: AppendRequest): Promise<AppendResult> {
    return this.enqueue(request, undefined);
  }

  /**
   * Events of one request, stored in one transaction in the order given: two flushes of the
   * same team may run at once (a deep queue), and the one sent second can take the team's lock
   * first, so a request split across them could be stored out of its own order.
   */
  appendMany(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    const group = requests.length > 1 ? {} : undefined;
    return Promise.all(requests.map((r) => this.enqueue(r, group)));
  }

  private enqueue(request: AppendRequest, group: object | undefined): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ request, group, resolve, reject });
      this.queued.set(request.teamId, (this.queued.get(request.teamId) ?? 0) + 1);
      this.schedule();
    });
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
      while (this.inFlight < this.maxInFlight) {
        const batch = this.takeBatch();
        if (batch.length === 0) break;
        const teams = new Set(batch.map((p) => p.request.teamId));
        teams.forEach((team) => this.running.set(team, (this.running.get(team) ?? 0) + 1));
        this.inFlight++;
        void this.flush(batch).finally(() => {
          teams.forEach((team) => {
            const left = this.running.get(team)! - 1;
            if (left === 0) this.running.delete(team);
            else this.running.set(team, left);
          });
          this.inFlight--;
          if (this.queue.length > 0) this.schedule();
          else if (this.inFlight === 0) this.drained.splice(0).forEach((resolve) => resolve());
        });
      }
    });
  }

  /**
   * Up to `maxBatch` queued events of the teams that may flush now (no flush running, or one and a
   * deep queue: see the header), in queue order; the rest keep their places, so each team's events
   * still flush in the order they came.
   */
  private takeBatch(): Pending[] {
    const ready = new Map<number, boolean>();
    const mayFlush = (team: number): boolean => {
      let yes = ready.get(team);
      if (yes === undefined) {
        const running = this.running.get(team) ?? 0;
        yes = running === 0 || (this.queued.get(team) ?? 0) >= PIPELINE_DEPTH;
        ready.set(team, yes);
      }
      return yes;
    };
    const batch: Pending[] = [];
    const rest: Pending[] = [];
    for (const pending of this.queue) {
      // Past maxBatch, only the rest of a request already in the batch (see appendMany).
      const room = batch.length < this.maxBatch || (pending.group !== undefined && pending.group === batch[batch.length - 1]!.group);
      if (room && mayFlush(pending.request.teamId)) batch.push(pending);
      else rest.push(pending);
    }
    if (batch.length === 0) return batch;
    this.queue = rest;
    for (const { request } of batch) {
      const left = this.queued.get(request.teamId)! - 1;
      if (left === 0) this.queued.delete(request.teamId);
      else this.queued.set(request.teamId, left);
    }
    return batch;
  }

  private async flush(batch: Pending[]): Promise<void> {
    const started = performance.now();
    let rows: AppendRow[];
    try {
      rows = await this.write(batch.map((p) => p.request));
    } catch (err) {
      this.options.onFlush?.(batch.length, (performance.now() - started) / 1000, false);
      const parts = requestsOf(batch);
      // One request's value that Postgres refuses (a NUL character, a dedup key too long to index,
      // …) fails the whole transaction: store the batch again in two halves, in order, each
      // halved again if it fails, so that only that request fails (with a 400) and the others,
      // of any team, are stored. Halves, not one flush per request: a poisoned batch of 1,000
      // costs about 20 flushes, not 1,000, so a client sending such values cannot stall ingest.
      if (parts.length > 1 && isRefusedValue(err)) {
        const half = Math.ceil(parts.length / 2);
        await this.flush(parts.slice(0, half).flat());
        await this.flush(parts.slice(half).flat());
        return;
      }
      for (const pending of batch) pending.reject(err);
      return;
    }
    const committedAt = Date.now();
    this.options.onFlush?.(batch.length, (performance.now() - started) / 1000, true);
    const fresh: CommittedEvent[] = [];
    for (const row of rows) {
      const pending = batch[row.ord - 1]!;
      pending.resolve({ seq: row.seq, duplicate: row.duplicate });
      if (!row.duplicate) {
        const { teamId, event } = pending.request;
        fresh.push({ teamId, seq: row.seq, type: event.type, json: event.json, committedAt });
      }
    }
    if (fresh.length > 0 && this.options.onCommitted) {
      fresh.sort((a, b) => a.teamId - b.teamId || a.seq - b.seq);
      this.options.onCommitted(fresh);
    }
  }

  private async write(requests: readonly AppendRequest[]): Promise<AppendRow[]> {
    return appendOn(this.pool, requests, this.options.selfInstanceId, this.options.federationSource);
  }
}

/** The batch's requests, in order: the events of one appendMany (one `group`) stay together. */
function requestsOf(batch: readonly Pending[]): Pending[][] {
  const parts: Pending[][] = [];
  for (const pending of batch) {
    const last = parts[parts.length - 1];
    if (last && pending.group !== undefined && last[0]!.group === pending.group) last.push(pending);
    else parts.push([pending]);
  }
  return parts;
}

/**
 * One call of the append function on `db`: the group commit's own (on the pool, autocommit), or
 * inside a caller's transaction, so that an internal event commits with the state it reports.
 * Listeners on every node, this one included, hear of it through the function's NOTIFY.
 */
export async function appendOn(db: Pool | PoolClient, requests: readonly AppendRequest[], selfInstanceId: string, federationSource: string): Promise<AppendRow[]> {
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
  // A named statement is parsed once per connection instead of once per batch. The events go as
  // one JSON array, their texts as they are (each one valid JSON value): a json[] parameter would
  // escape every quote of every event into an array literal.
  const result = await db.query<AppendRow>({
    name: 'kite_append_events',
    text: APPEND_SQL,
    values: [teams, sources, ids, types, times, `[${jsons.join(',')}]`, selfInstanceId, federationSource],
  });
  return result.rows;
}

export interface AppendRow {
  ord: number;
  seq: number;
  duplicate: boolean;
}
