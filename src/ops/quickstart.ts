/**
 * The first-start experience of `npm start` on the embedded Postgres: a `demo` team with a
 * GitHub-style source (its signature has no timestamp, so the printed curl keeps working), and a
 * banner with the admin token (once), the curl and the listen command. Never done on a
 * DATABASE_URL deployment: production databases get no demo data.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Config } from '../config.js';
import type { Pool } from '../db/pool.js';
import type { SourceRegistry } from '../sources/source-registry.js';
import type { TeamDirectory } from '../teams/team-directory.js';

const DEMO_TEAM = 'demo';
const DEMO_SOURCE = 'github-demo';

export async function ensureDemo(pool: Pool, teams: TeamDirectory, sources: SourceRegistry): Promise<{ secret: string } | undefined> {
  const count = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM teams');
  let teamId = await teams.find(DEMO_TEAM);
  if (teamId === undefined) {
    if ((count.rows[0]?.n ?? 0) > 0) return undefined; // the operator has teams of their own
    teamId = await teams.create(DEMO_TEAM);
  }
  const existing = await sources.find(teamId, DEMO_SOURCE);
  if (existing) return { secret: existing.secret };
  const secret = randomBytes(24).toString('base64url');
  await sources.create(teamId, DEMO_SOURCE, 'github', secret);
  return { secret };
}

export function quickstartBanner(config: Config, localUrl: string, adminToken: { token: string; file: string } | undefined, demo: { secret: string } | undefined): string {
  const lines = ['', `Kite ${config.instanceId} is listening on ${localUrl}`];
  if (adminToken) {
    lines.push('', `Admin token (shown once; also saved in ${adminToken.file}):`, `  ${adminToken.token}`);
  }
  if (demo) {
    const body = JSON.stringify({ action: 'opened', zen: 'Webhooks in, events out.' });
    const signature = createHmac('sha256', demo.secret).update(body).digest('hex');
    lines.push(
      '',
      'Listen to the demo team in another terminal:',
      `  npx kite listen --team ${DEMO_TEAM} --url ${localUrl}`,
      '',
      'Send it a signed test webhook:',
      `  curl -sS -X POST ${localUrl}/hooks/${DEMO_TEAM}/${DEMO_SOURCE} -H 'content-type: application/json' \\`,
      `    -H 'X-GitHub-Event: issues' -H "X-GitHub-Delivery: demo-$(date +%s%N)" \\`,
      `    -H 'X-Hub-Signature-256: sha256=${signature}' \\`,
      `    -d '${body}'`,
    );
  }
  lines.push('', `Status page (sign in with the admin token): ${localUrl}/ui`);
  lines.push('');
  return lines.join('\n');
}
