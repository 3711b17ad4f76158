/**
 * A sampling profiler for Postgres: every few ms, which statements of the bench databases are
 * active and what they wait on (pg_stat_activity). Over a drain it shows where the time of each
 * delivery round trip goes in the database (share of samples per statement / wait event).
 */
import pg from 'pg';
import { ADMIN_DATABASE_URL } from './kite.js';

export interface ActivityReport {
  readonly samples: number;
  /** "db: state wait: query head" → share of samples (0..1), largest first. */
  readonly top: readonly { readonly what: string; readonly share: number }[];
}

export function sampleActivity(databases: Record<string, string>, everyMs = 5): { stop(): Promise<ActivityReport> } {
  const client = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  const counts = new Map<string, number>();
  let samples = 0;
  let running = true;
  const names = Object.keys(databases);
  const label = (db: string) => Object.entries(databases).find(([, name]) => name === db)?.[0] ?? db;
  const loop = (async () => {
    await client.connect();
    while (running) {
      const { rows } = await client.query<{ datname: string; state: string; wait: string | null; query: string }>(
        `SELECT datname, state, wait_event_type || ':' || wait_event AS wait, regexp_replace(left(query, 70), '\\s+', ' ', 'g') AS query
           FROM pg_stat_activity WHERE datname = ANY ($1) AND pid <> pg_backend_pid() AND state <> 'idle'`,
        [Object.values(databases)],
      );
      samples++;
      for (const r of rows) {
        const key = `${label(r.datname)}: ${r.state}${r.wait ? ` [${r.wait}]` : ''} ${r.query}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
    await client.end();
  })();
  void names;
  return {
    stop: async () => {
      running = false;
      await loop.catch(() => {});
      const top = [...counts.entries()].sort((x, y) => y[1] - x[1]).slice(0, 15).map(([what, n]) => ({ what, share: Math.round((n / Math.max(1, samples)) * 1000) / 1000 }));
      return { samples, top };
    },
  };
}
