/**
 * Where the database is: DATABASE_URL when given, else the embedded Postgres under the data dir.
 */
import type { Config } from '../config.js';
import type { Logger } from '../observability/logger.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';

export interface Database {
  readonly url: string;
  /** Stops the embedded Postgres, if Kite started one; a no-op for DATABASE_URL. */
  stop(): Promise<void>;
}

export async function openDatabase(config: Config, logger: Logger): Promise<Database> {
  if (config.databaseUrl) return { url: config.databaseUrl, stop: async () => {} };
  return startEmbeddedPostgres(config.dataDir, logger);
}
