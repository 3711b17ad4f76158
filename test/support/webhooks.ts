/** Sends signed Stripe webhooks to a Kite node: the common load of the listening tests. */
import { stripeWebhook } from './signers.js';

export const STRIPE_SECRET = 'whsec_listen_test_secret';

export async function sendStripe(baseUrl: string, team: string, source: string, fields: Parameters<typeof stripeWebhook>[1] = {}): Promise<{ id: string; seq: number; duplicate: boolean }> {
  const hook = stripeWebhook(STRIPE_SECRET, fields);
  const response = await fetch(`${baseUrl}/hooks/${team}/${source}`, { method: 'POST', body: hook.body, headers: hook.headers });
  const body = (await response.json()) as { id: string; seq: number; duplicate: boolean };
  if (response.status !== 200) throw new Error(`ingest answered ${response.status}: ${JSON.stringify(body)}`);
  return body;
}

/** Runs `total` tasks with at most `concurrency` at once. */
export async function inParallel<T>(total: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(total);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (next < total) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}
