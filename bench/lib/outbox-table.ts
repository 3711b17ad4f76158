/**
 * The outbox as a table, for the `outbox` scenario: `outbox` has the columns and indexes of Kite's
 * `federation_deliveries` (migrations 0002, 0003) — a peer's queue is the partial index
 * (peer_id, event_seq) WHERE status = 'pending' — without its foreign keys to `events` and
 * `peers` (neither side of the comparison pays for them). `events` is shaped like Kite's, with
 * ~1 KB rows, for the figures where the outbox is written in the transaction that stores events.
 */
import type pg from 'pg';

/** pg.Pool or a checked-out client (inside a transaction). */
type Db = pg.Pool | pg.PoolClient;

export const SOURCE = '/bench/stripe';
export const TYPE = 'stripe.payment_intent.succeeded';

export const TABLE_SCHEMA = `
  CREATE TABLE events (
    team_id bigint NOT NULL, seq bigint NOT NULL, source text NOT NULL, id text NOT NULL, type text NOT NULL,
    time timestamptz NOT NULL, stored_at timestamptz NOT NULL DEFAULT now(), event json NOT NULL,
    PRIMARY KEY (team_id, seq), CONSTRAINT events_dedup UNIQUE (team_id, source, id));
  CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    peer_id uuid NOT NULL, team_id bigint NOT NULL, event_seq bigint NOT NULL,
    event_id text NOT NULL, event_source text NOT NULL, event_type text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead_lettered', 'discarded')),
    attempts integer NOT NULL DEFAULT 0, last_status_code integer, last_error text,
    created_at timestamptz NOT NULL DEFAULT now(), delivered_at timestamptz,
    UNIQUE (peer_id, event_seq));
  CREATE INDEX outbox_queue ON outbox (peer_id, event_seq) WHERE status = 'pending';
  CREATE INDEX outbox_held ON outbox (peer_id, event_seq) WHERE status = 'dead_lettered';
  CREATE INDEX outbox_recent ON outbox (team_id, id DESC);
  CREATE INDEX outbox_event ON outbox (team_id, event_seq);`;

// One counter for the whole run: seqs never repeat, so no insert ever hits a unique index.
let nextSeq = 1;

export function takeSeqs(n: number): number[] {
  const seqs = Array.from({ length: n }, (_, i) => nextSeq + i);
  nextSeq += n;
  return seqs;
}

export const eventId = (seq: number) => `evt_bench_${seq}`;

const NOTE = 'x'.repeat(760);

/** A stored CloudEvent of ~1.1 KB, as Kite keeps a Stripe webhook. */
function eventJson(seq: number): string {
  return `{"specversion":"1.0","id":"${eventId(seq)}","source":"${SOURCE}","type":"${TYPE}","time":"2026-11-27T00:00:00.000Z",` +
    `"datacontenttype":"application/json","data":{"object":"event","order":"ord_${seq}","note":"${NOTE}"}}`;
}

/** One delivery row, one statement (autocommit: one commit per row). */
export async function insertOne(db: Db, peer: string, seq: number): Promise<number> {
  await db.query(
    'INSERT INTO outbox (peer_id, team_id, event_seq, event_id, event_source, event_type) VALUES ($1, 1, $2, $3, $4, $5)',
    [peer, seq, eventId(seq), SOURCE, TYPE],
  );
  return 1;
}

/** Delivery rows for `seqs`, one `INSERT … SELECT FROM unnest(…)`, as the append function writes them. */
export async function insertBatch(db: Db, peer: string, seqs: readonly number[]): Promise<number> {
  await db.query(
    `INSERT INTO outbox (peer_id, team_id, event_seq, event_id, event_source, event_type)
     SELECT $1, 1, s, i, $2, $3 FROM unnest($4::bigint[], $5::text[]) AS u(s, i)`,
    [peer, SOURCE, TYPE, seqs, seqs.map(eventId)],
  );
  return seqs.length;
}

/** The events themselves (~1 KB each). */
export async function insertEvents(db: Db, seqs: readonly number[]): Promise<void> {
  await db.query(
    `INSERT INTO events (team_id, seq, source, id, type, time, event)
     SELECT 1, s, $1, i, $2, now(), e FROM unnest($3::bigint[], $4::text[], $5::json[]) AS u(s, i, e)`,
    [SOURCE, TYPE, seqs, seqs.map(eventId), seqs.map(eventJson)],
  );
}

/**
 * A group commit's shape: the events and their delivery rows in ONE statement (as
 * kite_append_events does), autocommitted — one round trip, one commit.
 */
export async function appendWithOutbox(db: Db, peer: string, seqs: readonly number[]): Promise<void> {
  await db.query(
    `WITH stored AS (
       INSERT INTO events (team_id, seq, source, id, type, time, event)
       SELECT 1, s, $2, i, $3, now(), e FROM unnest($4::bigint[], $5::text[], $6::json[]) AS u(s, i, e)
       RETURNING seq, id)
     INSERT INTO outbox (peer_id, team_id, event_seq, event_id, event_source, event_type)
     SELECT $1, 1, seq, id, $2, $3 FROM stored`,
    [peer, SOURCE, TYPE, seqs, seqs.map(eventId), seqs.map(eventJson)],
  );
}

export const NEXT_ROWS_SQL = `SELECT id, event_seq, event_id FROM outbox
  WHERE peer_id = $1 AND status = 'pending' ORDER BY event_seq LIMIT $2`;

/** One drain step, as a peer's actor reads its queue and marks a delivered batch (two statements). */
export async function drainStep(db: Db, peer: string, batch: number): Promise<number> {
  const { rows } = await db.query<{ id: string }>(NEXT_ROWS_SQL, [peer, batch]);
  if (rows.length === 0) return 0;
  await db.query(
    `UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = now()
      WHERE id = ANY ($1::bigint[]) AND status = 'pending'`,
    [rows.map((r) => r.id)],
  );
  return rows.length;
}

export async function pendingRows(db: Db, peer: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM outbox WHERE peer_id = $1 AND status = 'pending'`, [peer]);
  return Number(rows[0]!.n);
}

/** Runs `work` in BEGIN … COMMIT on one client (ROLLBACK and a discarded client on error). */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    client.release();
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    client.release(true);
    throw err;
  }
}
