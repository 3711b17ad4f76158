/**
 * The effects a peer's actor runs: send its next batch, or a probe, and classify the answer ONCE
 * into a DeliveryOutcome (machines/delivery-outcome.ts) — the machine reads only the tag.
 *
 * The queue is the peer's `pending` deliveries in event seq order. A batch holds at most as many
 * events as the token bucket has tokens. A failed batch is re-sent identically (same events, same
 * body, same `webhook-id`) until it is answered; a 413 splits it; another 4xx to a batch re-sends
 * its events one at a time, and another 4xx to one event dead-letters that event alone.
 *
 * Draining a deep queue, the next batch is read while the current one is in flight (read-ahead):
 * the read leaves out the batch in flight and the one still being marked, and is used only if the
 * whole batch in flight was delivered and the read found a full batch. A shorter read means the
 * queue was nearly empty: it is dropped and the queue read again after the answer, so an event
 * that commits during a request still goes out in the very next one (latency below saturation).
 */
import type { DeliveryOutcome } from '../../machines/delivery-outcome.js';
import { inTransaction, type Pool, type PoolClient } from '../db/pool.js';
import type { NormalizedEvent } from '../providers/types.js';
import { signStandard } from '../providers/standard-signature.js';
import { requestOutcome, type PeerDeliveryObserver } from '../observability/federation-metrics.js';
import { answerKind } from './answer-kind.js';
import type { DeliveredMarks } from './delivered-marks.js';
import { deliveryFailedEvent } from './internal-events.js';
import { fenceCheck, LeaseLostError } from './lease-store.js';
import type { PeerHttp, PeerResponse } from './peer-http.js';
import { stampedCopyText } from './provenance.js';
import type { QueueReader, QueueRow } from './queue-reader.js';
import { lockTeamRow } from './team-lock.js';
import type { TokenBucket } from './token-bucket.js';

/**
 * The largest batch sent in one request, whatever the bucket holds, and its largest body: one
 * request at a time keeps a peer's order, so a drain's pace is batch size ÷ round trip. The byte
 * cap stays under the receiver's default body limit (1 MiB), so a full batch is not refused 413.
 */
export const MAX_BATCH = 500;
export const MAX_BATCH_BYTES = 768 * 1024;
const STAMP_BYTES = 512;

/**
 * "Still pending", for statements that find deliveries by ID. Not `= 'pending'`: that matches the
 * queue index's predicate, and a generic plan (made without the values, as named statements' are)
 * then ANDs a scan of that whole index, every pending delivery of every peer, with the primary key
 * lookup. With 1,000 peers and 6,000 pending, each mark of one event read 210 buffers (2 ms);
 * draining one peer's backlog of 100,000, each mark walked the backlog.
 */
export const STILL_PENDING = "NOT IN ('delivered', 'dead_lettered', 'discarded')";

/**
 * Statements that find deliveries by ID (`id = ANY ($1)`) are not named: they are planned at every
 * execution. While the outbox is a few pages a sequential scan is the cheaper plan for them, and a
 * named statement keeps the generic plan it made then for the life of its connection (until the
 * table's next ANALYZE): on a fresh database every mark scanned the whole outbox as it grew (isolation
 * bench: 180–325 buffers and 1.0–1.8 ms a mark, the largest user of A's Postgres). Planned each
 * time: 32 buffers, 0.2 ms to run plus 0.2 ms to plan.
 */

/** A retried batch's rows, by delivery ID, if every one is still pending (`$1` the IDs). */
export const ROWS_BY_ID = {
  text: `SELECT d.id, d.event_seq, d.event_id, d.event_source, d.event_type, d.attempts, e.event::text AS json
     FROM federation_deliveries d JOIN events e ON e.team_id = d.team_id AND e.seq = d.event_seq
    WHERE d.id = ANY ($1::bigint[]) AND d.status ${STILL_PENDING}
    ORDER BY d.event_seq`,
} as const;

/**
 * Marks deliveries that are still pending as retried (`pending`) or held (`dead_lettered`), fenced
 * by the lease, under a lock on it: `$1` IDs, `$2` the new status, `$3` HTTP status, `$4` error,
 * `$5` refused alone, `$6` peer, `$7` fence. Not named (see above). Delivered batches are marked
 * together with other actors' (delivered-marks.ts).
 */
export const MARK = {
  text: `WITH ${fenceCheck(6, 7)},
   marked AS (
     UPDATE federation_deliveries
        SET status = $2, attempts = attempts + 1, last_status_code = $3, last_error = $4, refused_alone = $5
      WHERE id = ANY ($1::bigint[]) AND status ${STILL_PENDING} AND EXISTS (SELECT 1 FROM lease)
     RETURNING 1
   )
   SELECT (SELECT count(*) FROM lease)::int AS owned, (SELECT count(*) FROM marked)::int AS marked`,
} as const;

export interface DeliveryPeer {
  readonly id: string;
  readonly teamId: number;
  readonly instanceId: string;
  readonly remoteTeam: string;
}

export interface DeliveryDeps {
  readonly pool: Pool;
  readonly selfInstanceId: string;
  readonly publicUrl: string;
  /** The lease's fencing token: marking deliveries succeeds only while the lease carries it. */
  readonly fence: number;
  readonly peer: () => DeliveryPeer;
  /** Current outbound key, plus the previous one during a rotation's 24 hours. */
  readonly signingKeys: () => string[];
  readonly http: () => PeerHttp;
  readonly bucket: TokenBucket;
  /** Stores an internal event on `client`, in the caller's transaction. */
  readonly appendInternal: (client: PoolClient, teamId: number, event: NormalizedEvent) => Promise<unknown>;
  /** Told of every delivery request's outcome, size and round trip (metrics). */
  readonly observer?: PeerDeliveryObserver;
  /** Reads the head of the queue, together with other actors' reads (queue-reader.ts). */
  readonly reader: QueueReader;
  /** Marks delivered batches, together with other actors' marks (delivered-marks.ts). */
  readonly marks: DeliveredMarks;
}

type Row = QueueRow;

type Answer = { kind: 'answer'; response: PeerResponse } | { kind: 'error'; message: string };

export class PeerDelivery {
  /** The batch that failed last, re-sent identically on the next attempt. */
  private retrying: number[] | undefined;
  /**
   * The mark of the last delivered batch, still committing while the next batch is read and sent
   * (its rows are left out of that read). Every outcome other than `delivered` waits for it
   * first, so the state change that follows (and its `held` count) sees it committed; its error
   * (a lost lease, the database) surfaces at that wait. A crash before it commits only
   * means the batch is sent again, which the receiver deduplicates.
   */
  private marking: { readonly ids: number[]; readonly done: Promise<unknown> } | undefined;
  /** The batch after the one in flight, read meanwhile (see the header); `limit` rows asked. */
  private ahead: { readonly limit: number; readonly rows: Promise<Row[]> } | undefined;
  /** Bumped by forgetReadAhead(), so a read-ahead started before a change is never kept. */
  private queueChanges = 0;
  /**
   * Set when the batch just delivered came from a read that found fewer rows than it asked for:
   * at that read nothing else was pending. Holds the queue-change count from before that read.
   */
  private drainedAt: number | undefined;
  /**
   * The seq of the last event delivered, and the queue-change count it holds for: below it nothing
   * is pending, so the next read starts there. A read from the bottom walked the partial index's
   * entries for every delivery ever marked since the last VACUUM (100,000 of them: 10 ms for the
   * first read, 0.3 ms once they are flagged dead, against 0.05). A hold, release or redrive
   * (which may put older rows back in the queue) voids it, and so do a new actor, a read set off
   * by a timer rather than a delivery or a wake-up (the safety net), and lost notifications.
   */
  private floor: { readonly seq: number; readonly changes: number } | undefined;
  /**
   * A failure (429, 5xx, 401, …) answered to a one-at-a-time re-send after earlier ones of the same
   * batch were delivered: oneByOne reports those deliveries, and the next deliverNext reports this,
   * without sending, so the machine sees both in the order they happened (a success, then the
   * state the failure calls for). Void once the queue changes (a hold, a release, a redrive).
   */
  private failureAfterDelivered: { readonly outcome: DeliveryOutcome; readonly changes: number } | undefined;

  constructor(private readonly deps: DeliveryDeps) {}

  /**
   * Drops the read-ahead: the queue changed under it (a hold, a release, a redrive). Called before
   * any such write is queued; the next delivery reads the queue again after that write.
   */
  forgetReadAhead(): void {
    this.queueChanges++;
    this.ahead = undefined;
  }

  /**
   * True (once) right after a delivered batch whose read found the queue shorter than asked, if
   * the queue has not changed since (no hold, release or retry): the read that would follow is
   * known to find nothing unless something was enqueued meanwhile, which only the caller can tell
   * (a wake-up since). With many quiet peers that empty read was a third of the queries.
   */
  takeDrained(): boolean {
    const drained = this.drainedAt !== undefined && this.drainedAt === this.queueChanges && !this.retrying && !this.ahead;
    this.drainedAt = undefined;
    return drained;
  }

  async deliverNext(signal: AbortSignal, timeoutMs: number): Promise<DeliveryOutcome> {
    this.drainedAt = undefined;
    const failure = this.failureAfterDelivered;
    this.failureAfterDelivered = undefined;
    if (failure && failure.changes === this.queueChanges) {
      await this.settle();
      return failure.outcome;
    }
    const tokens = Math.floor(this.deps.bucket.available());
    if (tokens < 1) {
      // Rate-limited means events wait for tokens: with nothing pending the peer is idle (the last
      // event took the last token), not rate-limited with nothing held. One read of one row tells.
      if (!this.retrying && !(await this.morePending())) {
        await this.settle();
        return { tag: 'idle' };
      }
      await this.settle();
      return { tag: 'rate-limited', retryAfterMs: Math.max(1, this.deps.bucket.msUntil(1)) };
    }
    const ahead = this.ahead;
    this.ahead = undefined;
    const changesBefore = this.queueChanges;
    const rows = this.retrying ? await this.rowsById(this.retrying) : [];
    // A re-sent batch is sent whole (same body, same webhook-id): it waits for all its tokens.
    if (rows.length > tokens) return { tag: 'rate-limited', retryAfterMs: Math.max(1, this.deps.bucket.msUntil(rows.length)) };
    const limit = Math.min(tokens, MAX_BATCH);
    let batch = rows;
    if (batch.length === 0 && ahead) {
      const read = await ahead.rows;
      // Only a full read-ahead proves the queue is deep; the bucket may hold fewer tokens now. A
      // hold or release queued while we waited for it makes it stale too.
      if (read.length === ahead.limit && changesBefore === this.queueChanges) batch = read.slice(0, limit);
    }
    const fresh = batch.length === 0;
    if (fresh) batch = await this.nextRows(limit, this.marking?.ids ?? [], this.floorSeq());
    this.retrying = undefined;
    if (batch.length === 0) {
      await this.settle();
      return { tag: 'idle' };
    }
    // A full batch: the queue may hold more, so read the next one while this one travels.
    const readAhead = batch.length === limit && rows.length === 0 ? this.readAhead(batch, limit) : undefined;
    const changes = this.queueChanges;
    const outcome = await this.send(batch, signal, timeoutMs);
    // Valid only if every event of the batch is settled: a partial outcome (a 413 split, the byte
    // cap, one-by-one re-sends cut short) leaves some of them at the head of the queue.
    const whole = outcome.tag === 'delivered' && outcome.count === batch.length;
    if (readAhead && whole && changes === this.queueChanges && !signal.aborted) this.ahead = readAhead;
    if (fresh && batch.length < limit && whole && !signal.aborted) this.drainedAt = changesBefore;
    // What was delivered is a prefix of the batch (a partial outcome leaves the rest pending).
    if (outcome.tag === 'delivered' && outcome.count > 0) this.floor = { seq: batch[Math.min(outcome.count, batch.length) - 1]!.event_seq, changes: changesBefore };
    // The bucket, not the queue, sized the batch (a full read of as many rows as there were
    // tokens: more may wait): paced. Whether tokens came back while the request travelled does
    // not matter (at 100/s a 14 ms round trip refills one, and the peer flipped to healthy and
    // back at every request); the queue running short of the tokens ends the pacing.
    if (outcome.tag === 'delivered' && whole && batch.length === limit && limit < MAX_BATCH) {
      return { ...outcome, pacedMs: Math.max(1, this.deps.bucket.msUntil(1)) };
    }
    return outcome;
  }

  /** Whether anything beyond the batches in flight or being marked is pending (the read-ahead, if any, knows). */
  private async morePending(): Promise<boolean> {
    if (this.ahead) return (await this.ahead.rows).length > 0;
    return (await this.nextRows(1, this.marking?.ids ?? [], this.floorSeq())).length > 0;
  }

  /** The next read starts at the bottom of the queue (see `floor`). */
  forgetFloor(): void {
    this.floor = undefined;
  }

  private floorSeq(): number {
    return this.floor && this.floor.changes === this.queueChanges ? this.floor.seq : 0;
  }

  private readAhead(inFlight: Row[], limit: number): { limit: number; rows: Promise<Row[]> } {
    const exclude = inFlight.map((r) => r.id);
    if (this.marking) exclude.push(...this.marking.ids);
    // It is used only if the batch in flight is delivered whole: start after its last event.
    const rows = this.nextRows(limit, exclude, inFlight[inFlight.length - 1]!.event_seq);
    rows.catch(() => {}); // an unused read-ahead's error is nobody's; a used one rethrows when awaited
    return { limit, rows };
  }

  /** Waits for the mark still committing, if any; throws its error. */
  async settle(): Promise<void> {
    const marking = this.marking;
    if (!marking) return;
    try {
      await marking.done;
    } finally {
      if (this.marking === marking) this.marking = undefined;
    }
  }

  /** A signed empty batch: 2xx means the peer takes our requests again. */
  async probe(signal: AbortSignal, timeoutMs: number): Promise<DeliveryOutcome> {
    const answer = await this.post('[]', `kite-probe-${Date.now()}`, 'application/cloudevents-batch+json', signal, timeoutMs);
    return classify(answer, 0);
  }

  private async send(whole: Row[], signal: AbortSignal, timeoutMs: number): Promise<DeliveryOutcome> {
    const peer = this.deps.peer();
    // The head of the queue up to the byte cap (at least one event); the rest waits its turn. The
    // stamp adds the provenance extensions: well under STAMP_BYTES per event.
    let bytes = 0;
    let fits = 0;
    while (fits < whole.length && (fits === 0 || bytes + whole[fits]!.json.length + STAMP_BYTES < MAX_BATCH_BYTES)) bytes += whole[fits++]!.json.length + STAMP_BYTES;
    const batch = fits < whole.length ? whole.slice(0, fits) : whole;
    const copies = batch.map((row) => stampedCopyText(row.json, this.deps.selfInstanceId));
    this.deps.bucket.take(batch.length);
    const single = batch.length === 1;
    const body = single ? copies[0]! : `[${copies.join(',')}]`;
    const messageId = single ? `kite-d-${batch[0]!.id}` : `kite-b-${batch[0]!.id}-${batch[batch.length - 1]!.id}-${batch.length}`;
    const started = performance.now();
    const answer = await this.post(body, messageId, single ? 'application/cloudevents+json' : 'application/cloudevents-batch+json', signal, timeoutMs);
    const status = answer.kind === 'answer' ? answer.response.status : null;
    const kind = answerKind(status);
    const outcome = classify(answer, batch.length);
    this.deps.observer?.requestFinished(peer, requestOutcome(kind, batch.length), batch.length, (performance.now() - started) / 1000);
    await this.settle();
    if (outcome.tag === 'delivered') {
      const done = this.markDelivered(batch, status);
      done.catch(() => {}); // settled (and its error thrown) by the next settle()
      this.marking = { ids: batch.map((r) => r.id), done };
      return outcome;
    }
    if (kind === 'refused' && status !== null) {
      if (status === 413 && !single) {
        // Too large for the peer: send the first half now; the rest stays at the head of the queue.
        const half = batch.slice(0, Math.ceil(batch.length / 2));
        const wait = this.tokensFor(half.length);
        return wait ?? this.send(half, signal, timeoutMs);
      }
      if (!single) return this.oneByOne(batch, signal, timeoutMs);
      await this.deadLetterAlone(batch[0]!, peer, status);
      return { tag: 'delivered', count: 1 };
    }
    const error = outcome.tag === 'retryable' || outcome.tag === 'rejected' || outcome.tag === 'rate-limited' ? (outcome.error ?? `HTTP ${status}`) : null;
    await this.mark(batch, 'pending', status, error);
    if (outcome.tag !== 'rejected') this.retrying = batch.map((r) => r.id);
    return outcome;
  }

  private async oneByOne(batch: Row[], signal: AbortSignal, timeoutMs: number): Promise<DeliveryOutcome> {
    let count = 0;
    for (const row of batch) {
      // Re-sends are sends: they wait for tokens like any other (the rest stays pending).
      const wait = this.tokensFor(1);
      if (wait) return count > 0 ? { tag: 'delivered', count } : wait;
      const outcome = await this.send([row], signal, timeoutMs);
      if (outcome.tag !== 'delivered') {
        if (count === 0) return outcome;
        // send() has marked the row and set up its retry; the machine hears of it next.
        this.failureAfterDelivered = { outcome, changes: this.queueChanges };
        return { tag: 'delivered', count };
      }
      count += outcome.count;
    }
    return { tag: 'delivered', count };
  }

  /** A rate-limited outcome when the bucket lacks `count` tokens, else undefined. */
  private tokensFor(count: number): DeliveryOutcome | undefined {
    if (this.deps.bucket.available() >= count) return undefined;
    return { tag: 'rate-limited', retryAfterMs: Math.max(1, this.deps.bucket.msUntil(count)) };
  }

  private async post(body: string, messageId: string, contentType: string, signal: AbortSignal, timeoutMs: number): Promise<Answer> {
    const peer = this.deps.peer();
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'content-type': contentType,
      'webhook-id': messageId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signStandard(this.deps.signingKeys(), messageId, timestamp, body),
      'kite-peer': this.deps.selfInstanceId,
    };
    try {
      const response = await this.deps.http().post(`/hooks/${encodeURIComponent(peer.remoteTeam)}/kite`, headers, body, AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]), timeoutMs);
      return { kind: 'answer', response };
    } catch (err) {
      return { kind: 'error', message: describe(err) };
    }
  }

  /**
   * The head of the queue above `afterSeq` (0: from the bottom), without `exclude` (rows in
   * flight, or delivered and still being marked).
   */
  private nextRows(limit: number, exclude: number[], afterSeq: number): Promise<Row[]> {
    return this.deps.reader.read({ peerId: this.deps.peer().id, limit, exclude, afterSeq });
  }

  private async rowsById(ids: number[]): Promise<Row[]> {
    const result = await this.deps.pool.query<Row>({
      ...ROWS_BY_ID,
      values: [ids],
    });
    // Only an unchanged batch is a retry of the same request; otherwise start from the queue's head.
    return result.rows.length === ids.length ? result.rows : [];
  }

  /** A delivered batch's mark, with other actors' (delivered-marks.ts); fenced like mark(). */
  private async markDelivered(batch: Row[], statusCode: number | null): Promise<void> {
    const peerId = this.deps.peer().id;
    const { owned } = await this.deps.marks.mark({ peerId, fence: this.deps.fence, ids: batch.map((r) => r.id), statusCode });
    if (!owned) throw new LeaseLostError(peerId);
  }

  /**
   * `refusedAlone`: dead-lettered on its own (a 4xx to this event), held until a redrive.
   * Fenced: throws LeaseLostError, changing nothing, when another node has taken the peer over.
   */
  private async mark(batch: Row[], status: 'pending' | 'dead_lettered', statusCode: number | null, error: string | null, refusedAlone = false, db: Pool | PoolClient = this.deps.pool): Promise<void> {
    const peerId = this.deps.peer().id;
    const result = await db.query<{ owned: number }>({
      ...MARK,
      values: [batch.map((r) => r.id), status, statusCode, error, refusedAlone, peerId, this.deps.fence],
    });
    if (result.rows[0]!.owned === 0) throw new LeaseLostError(peerId);
  }

  private async deadLetterAlone(row: Row, peer: DeliveryPeer, statusCode: number): Promise<void> {
    // The dead letter and its `delivery_failed` event commit together; the team's row first, in
    // the order a redrive and the append function take their locks.
    await inTransaction(this.deps.pool, async (client) => {
      await lockTeamRow(client, peer.teamId);
      await this.mark([row], 'dead_lettered', statusCode, `HTTP ${statusCode}: the peer refused this event`, true, client);
      await this.deps.appendInternal(client, peer.teamId, deliveryFailedEvent(this.deps.publicUrl, {
        peerId: peer.id, instanceId: peer.instanceId, eventId: row.event_id, eventSource: row.event_source, eventType: row.event_type,
        reason: 'rejected', statusCode, attempts: row.attempts + 1,
      }));
    });
  }
}

/**
 * Contract §5 "Outcomes the sender acts on", as the peer machine reads it (answer-kind.ts). A
 * refusal is `retryable` here: to a probe it is a failure like any other; to a send, send()
 * splits the batch, re-sends it one by one or dead-letters the event alone instead.
 */
export function classify(answer: Answer, count: number): DeliveryOutcome {
  if (answer.kind === 'error') return { tag: 'retryable', error: answer.message };
  const { status, retryAfter } = answer.response;
  switch (answerKind(status)) {
    case 'delivered': return { tag: 'delivered', count };
    case 'rate-limited': return { tag: 'rate-limited', retryAfterMs: parseRetryAfter(retryAfter), error: 'HTTP 429' };
    case 'rejected': return { tag: 'rejected', statusCode: status, error: `HTTP ${status}: the peer rejects our requests` };
    case 'refused':
    case 'retryable': return { tag: 'retryable', statusCode: status, error: `HTTP ${status}` };
  }
}

/** Retry-After in whole seconds or an HTTP date; 1 s when absent or unreadable. */
export function parseRetryAfter(value: string | undefined): number {
  if (value === undefined) return 1000;
  if (/^\d+$/.test(value.trim())) return Math.max(0, Number(value.trim()) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? 1000 : Math.max(0, date - Date.now());
}

function describe(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string };
  if (e.name === 'TimeoutError' || e.code === 'UND_ERR_CONNECT_TIMEOUT' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT') return 'timeout';
  return [e.code, e.message].filter(Boolean).join(': ') || String(err);
}
