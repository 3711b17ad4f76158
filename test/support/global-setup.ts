/**
 * Once per `npm test`: find a Postgres (KITE_TEST_DATABASE_URL, else an embedded one in a temp
 * dir, so the suite also runs on a laptop with nothing installed), and build a migrated template
 * database that each test file clones (CREATE DATABASE … TEMPLATE is much faster than migrating).
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { migrate } from '../../src/db/migrate.js';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { createLogger } from '../../src/observability/logger.js';
import { withDatabase } from './database-url.js';

declare module 'vitest' {
  export interface ProvidedContext {
    serverUrl: string;
    templateDatabase: string;
  }
}

export default async function setup(project: TestProject) {
  const logger = createLogger('warn');
  let serverUrl = process.env['KITE_TEST_DATABASE_URL'];
  let stopEmbedded: (() => Promise<void>) | undefined;
  let dataDir: string | undefined;
  if (!serverUrl) {
    dataDir = await mkdtemp(path.join(tmpdir(), 'kite-test-pg-'));
    // Postgres runs as the 'postgres' user when we are root: it must be able to enter this folder.
    await chmod(dataDir, 0o755);
    const embedded = await startEmbeddedPostgres(dataDir, logger);
    serverUrl = embedded.url;
    stopEmbedded = () => embedded.stop();
  }
  const template = `kite_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: withDatabase(serverUrl, 'postgres') });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${template}`);
  await admin.query(`CREATE DATABASE ${template}`);
  await migrate(withDatabase(serverUrl, template), logger);
  project.provide('serverUrl', serverUrl);
  project.provide('templateDatabase', template);

  return async () => {
    // Test files drop their own databases; anything left (a crashed file) is swept here.
    const left = await admin.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE $1", [`kite_t${process.pid}_%`]);
    for (const { datname } of left.rows) await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`).catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`);
    await admin.end();
    await stopEmbedded?.();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  };
}
