/**
 * Applies `migrations/NNNN_name.sql` in order. Each file runs in its own transaction and is
 * recorded in `kite_migrations`; the whole run holds a session advisory lock, so nodes starting
 * at once apply each file exactly once (the second waits, then finds nothing left to do).
 * pg-boss manages its own schema; these files never touch it.
 */
import { statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Logger } from '../observability/logger.js';

/** `migrations/` at the package root, whether running from src/ (tests) or dist/src/ (built). */
export const MIGRATIONS_DIR = findMigrationsDir();

export const MIGRATE_CONNECT_TIMEOUT_MS = 10_000;

// An arbitrary constant shared by every Kite node: the advisory lock's key.
const MIGRATION_LOCK_KEY = 0x4b495445; // "KITE"

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = /^(\d{4})_[a-z0-9_]+\.sql$/.exec(file);
    if (!match) throw new Error(`Migration file name ${file} does not match NNNN_name.sql`);
    const version = Number(match[1]);
    if (migrations.some((m) => m.version === version)) throw new Error(`Two migrations share version ${version}`);
    migrations.push({ version, name: file, sql: await readFile(path.join(dir, file), 'utf8') });
  }
  return migrations;
}

export async function migrate(url: string, logger: Logger): Promise<{ applied: string[] }> {
  const migrations = await loadMigrations();
  // The first contact with the database at start: one that accepts connections and never
  // answers must fail the start with a line naming DATABASE_URL, not hang it silently.
  const client = new pg.Client({ connectionString: url, application_name: 'kite-migrate', connectionTimeoutMillis: MIGRATE_CONNECT_TIMEOUT_MS });
  // A lost connection fails the statement in flight; without a listener it would also crash the process.
  client.on('error', () => {});
  await client.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS kite_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM kite_migrations')).rows.map((r) => r.version));
    const newest = Math.max(0, ...done);
    const known = Math.max(0, ...migrations.map((m) => m.version));
    if (newest > known) {
      throw new Error(`The database is at migration ${newest}, newer than this Kite knows (${known}); upgrade Kite.`);
    }
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      try {
        await client.query('BEGIN');
        await client.query(migration.sql);
        await client.query('INSERT INTO kite_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw new Error(`Migration ${migration.name} failed: ${(err as Error).message}`);
      }
      applied.push(migration.name);
      logger.info({ migration: migration.name }, 'migration applied');
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {});
    await client.end();
  }
  return { applied };
}

/** True when every migration this Kite knows is applied (used by /readyz). */
export async function isMigrated(pool: pg.Pool): Promise<boolean> {
  const known = Math.max(0, ...(await loadMigrations()).map((m) => m.version));
  const result = await pool.query<{ newest: number | null }>(
    "SELECT CASE WHEN to_regclass('kite_migrations') IS NULL THEN NULL ELSE (SELECT max(version) FROM kite_migrations) END AS newest",
  );
  return (result.rows[0]?.newest ?? 0) >= known;
}

function findMigrationsDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'migrations');
    if (existsDir(candidate) && statSafe(path.join(dir, 'package.json'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error('Cannot find the migrations/ folder next to package.json');
}

function statSafe(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function existsDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
