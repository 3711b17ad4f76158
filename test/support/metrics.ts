/** Scraping a Kite node's /metrics in tests, and reading Prometheus text exposition. */
import { expect } from 'vitest';
import type { KiteApi } from './kite.js';

/** The value of the first sample named `name` whose labels include all of `labels`. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

/** The node's /metrics text, read without credentials as a scraper would. */
export async function metricsOf(kite: { readonly api: KiteApi }): Promise<string> {
  const answer = await kite.api.as(undefined).get('/metrics');
  expect(answer.status).toBe(200);
  return answer.body as string;
}

/**
 * Scrapes every 50 ms (a poll: gauges follow sockets and the database, there is no event to
 * await) until `predicate` holds; past `timeoutMs` fails naming `what`, with the last scrape.
 */
export async function waitForMetrics(kite: { readonly api: KiteApi }, predicate: (text: string) => boolean, what: string, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await metricsOf(kite);
    if (predicate(text)) return text;
    if (Date.now() > deadline) {
      const samples = text.split('\n').filter((line) => line.startsWith('kite_') && !/_bucket\{/.test(line));
      throw new Error(`timed out waiting for ${what}; last scrape:\n${samples.join('\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
