/** Memory of processes from /proc: Kite's RSS, and what the Postgres processes of a database hold. */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { postgresPids } from './machine.js';

export interface ProcMemory {
  /** Resident set, MB. */
  readonly rssMb: number;
  /** Private (anonymous) resident memory, MB: what the process itself allocated. */
  readonly anonMb: number;
  /** Resident shared memory (Postgres' shared buffers it touched), MB. */
  readonly shmemMb: number;
}

function kb(status: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) : 0;
}

export function procMemory(pid: number): ProcMemory {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const mb = (v: number) => Math.round(v / 102.4) / 10;
    return { rssMb: mb(kb(status, 'VmRSS')), anonMb: mb(kb(status, 'RssAnon')), shmemMb: mb(kb(status, 'RssShmem')) };
  } catch {
    return { rssMb: Number.NaN, anonMb: Number.NaN, shmemMb: Number.NaN };
  }
}

/**
 * Postgres memory for a benchmark database: private memory summed over its backends and the
 * shared processes, the largest shared-memory footprint of one of them (shared buffers are counted
 * once), and the configured shared_buffers.
 */
export async function postgresMemory(databaseUrl: string): Promise<{ privateMb: number; sharedMb: number; totalMb: number; sharedBuffers: string; processes: number }> {
  const pids = await postgresPids(databaseUrl);
  let privateMb = 0;
  let sharedMb = 0;
  for (const pid of pids) {
    const m = procMemory(pid);
    if (Number.isFinite(m.anonMb)) privateMb += m.anonMb;
    if (Number.isFinite(m.shmemMb)) sharedMb = Math.max(sharedMb, m.shmemMb);
  }
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  let sharedBuffers = 'unknown';
  try {
    sharedBuffers = (await client.query<{ shared_buffers: string }>('SHOW shared_buffers')).rows[0]!.shared_buffers;
  } finally {
    await client.end();
  }
  const r = (v: number) => Math.round(v * 10) / 10;
  return { privateMb: r(privateMb), sharedMb: r(sharedMb), totalMb: r(privateMb + sharedMb), sharedBuffers, processes: pids.length };
}

/** Samples a process' RSS every `everyMs`; `stop()` returns the peak and last values. */
export function rssSampler(pid: number, everyMs = 500): { stop(): { peakMb: number; lastMb: number } } {
  let peak = 0;
  let last = 0;
  const read = () => {
    last = procMemory(pid).rssMb;
    if (Number.isFinite(last)) peak = Math.max(peak, last);
  };
  read();
  const timer = setInterval(read, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      read();
      return { peakMb: peak, lastMb: last };
    },
  };
}
