/**
 * A throwaway database on the bench Postgres (ADMIN_DATABASE_URL), for scenarios that measure
 * Postgres itself rather than a Kite server. Dropped by `drop()`, and also on an error or Ctrl-C
 * (registered with processes.ts's cleanup), so no run leaves one behind.
 */
import { adminQuery, ADMIN_DATABASE_URL } from './kite.js';
import { onCleanup } from './processes.js';

export interface ScratchDatabase {
  readonly name: string;
  readonly url: string;
  /** Drops it (WITH FORCE: connections still open are cut); safe to call twice. */
  drop(): Promise<void>;
}

/** Creates `kite_bench_<prefix>_<pid>_<time>`; the prefix must be a plain identifier. */
export async function createScratchDatabase(prefix: string): Promise<ScratchDatabase> {
  if (!/^[a-z0-9_]+$/.test(prefix)) throw new Error(`scratch database prefix must be [a-z0-9_]+ (got ${JSON.stringify(prefix)})`);
  const name = `kite_bench_${prefix}_${process.pid}_${Date.now().toString(36)}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  let dropped = false;
  const dropIt = async () => {
    if (dropped) return;
    dropped = true;
    await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  };
  const unregister = onCleanup(dropIt);
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: async () => {
      unregister();
      await dropIt();
    },
  };
}
