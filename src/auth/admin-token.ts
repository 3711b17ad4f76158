/**
 * The instance admin token (contract §2). KITE_ADMIN_TOKEN when set; otherwise one is generated on
 * the first start of the instance, its hash stored in Postgres (so every node accepts it) and the
 * token itself written to `<KITE_DATA_DIR>/admin-token` (mode 0600) and printed once.
 * Nodes racing on the first start agree through a conditional UPDATE: only the winner writes and
 * prints its token.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Pool } from '../db/pool.js';
import { generateAdminToken, hashSecret } from './secrets.js';

export interface AdminTokenState {
  /** Hash of the token this instance accepts. */
  readonly hash: Buffer;
  /** Set only on the start that created the token: the caller prints it once. */
  readonly created?: { readonly token: string; readonly file: string };
}

export async function loadAdminToken(pool: Pool, configured: string | undefined, dataDir: string): Promise<AdminTokenState> {
  if (configured) return { hash: hashSecret(configured) };
  const existing = await pool.query<{ admin_token_hash: Buffer | null }>('SELECT admin_token_hash FROM kite_instance');
  const stored = existing.rows[0]?.admin_token_hash;
  if (stored) return { hash: stored };

  const token = generateAdminToken();
  const hash = hashSecret(token);
  const won = await pool.query('UPDATE kite_instance SET admin_token_hash = $1 WHERE admin_token_hash IS NULL', [hash]);
  if (won.rowCount === 0) return loadAdminToken(pool, configured, dataDir);
  const file = path.resolve(dataDir, 'admin-token');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return { hash, created: { token, file } };
}
