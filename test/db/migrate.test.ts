import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMigrations, migrate } from '../../src/db/migrate.js';
import { createLogger } from '../../src/observability/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let db: TestDatabase;
const logger = createLogger('silent');

beforeAll(async () => {
  db = await createTestDatabase({ empty: true });
});

afterAll(async () => {
  await db?.drop();
});

describe('migrations', () => {
  it('migrate - two nodes migrating an empty database at once apply each file exactly once', async () => {
    const files = await loadMigrations();
    const [a, b] = await Promise.all([migrate(db.url, logger), migrate(db.url, logger)]);
    expect([...a.applied, ...b.applied].sort()).toEqual(files.map((f) => f.name));
    const rows = await db.query<{ version: number }>('SELECT version FROM kite_migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(files.map((f) => f.version));
  });

  it('migrate - a second run applies nothing', async () => {
    expect((await migrate(db.url, logger)).applied).toEqual([]);
  });

  it('migrate - a database newer than this Kite is refused with a clear error', async () => {
    await db.query("INSERT INTO kite_migrations (version, name) VALUES (9999, '9999_future.sql')");
    await expect(migrate(db.url, logger)).rejects.toThrow(/newer than this Kite knows/);
    await db.query('DELETE FROM kite_migrations WHERE version = 9999');
  });

  it('migrate - migration files are numbered NNNN_name.sql without gaps', async () => {
    const files = await loadMigrations();
    expect(files.map((f) => f.version)).toEqual(files.map((_, i) => i + 1));
  });
});
