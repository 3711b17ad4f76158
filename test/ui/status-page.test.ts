/**
 * The status page in a real browser (headless Chromium) against two real Kite instances paired
 * over real TLS: the page follows the peer's state live over its WebSocket, and its buttons work.
 * Every wait is on the DOM or the API with a deadline, never a fixed sleep. The run takes a
 * screenshot: into docs/status-page.png with KITE_UPDATE_SCREENSHOT=1 (how the committed one was
 * made), else into the temp dir, so that a plain `npm test` leaves the work tree clean.
 */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { peerKey } from '../support/federation.js';
import { ADMIN_TOKEN, expectStatus } from '../support/kite.js';
import {
  FAST_RETRY, getPeer, ingestMany, patchPeer, Scenario, stream, TEAM, until,
} from '../federation/scenario-kit.js';
import { launchChromium } from './browser.js';

// The page's DOM, as seen by the functions that run inside it (this project's types have no DOM lib).
interface PageNode { readonly textContent: string | null }
declare const document: { querySelector(selector: string): PageNode | null; querySelectorAll(selector: string): Iterable<PageNode> };

const SCREENSHOT_DIR = process.env['KITE_UPDATE_SCREENSHOT'] === '1'
  ? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs')
  : tmpdir();
const DOM_TIMEOUT_MS = 15_000;

let browser: Browser;
let s: Scenario;

beforeAll(async () => {
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
});

afterEach(async () => {
  await s?.stop();
});

/** The page's row of a peer, once it shows `state` (and the other fields given). */
async function peerRow(page: Page, peerId: string, state: string, fields: Record<string, string> = {}): Promise<void> {
  const row = `tr[data-peer-id="${peerId}"][data-state="${state}"]`;
  await page.waitForSelector(row, { timeout: DOM_TIMEOUT_MS });
  for (const [field, text] of Object.entries(fields)) {
    await page.waitForFunction(
      ([sel, value]) => document.querySelector(sel!)?.textContent === value,
      [`${row} [data-field="${field}"]`, text] as const,
      { timeout: DOM_TIMEOUT_MS },
    );
  }
}

describe('status page - in a browser', () => {
  it('status page - shows a peer backing off while its instance is down and healthy after, and its redrive and pause buttons work', { timeout: 120_000 }, async () => {
    s = new Scenario();
    const [a, b] = await Promise.all([s.instance('kite-a'), s.instance('kite-b')]);
    const aToB = peerKey();
    const bToA = peerKey();
    const { body: { id: aPeerId } } = expectStatus(await a.kite.api.post(`/v1/teams/${TEAM}/peers`,
      { instanceId: b.id, url: b.url, scopes: ['*'], outboundKey: aToB, inboundKey: bToA, retry: FAST_RETRY }), 201);
    const { body: { id: bPeerId } } = expectStatus(await b.kite.api.post(`/v1/teams/${TEAM}/peers`,
      { instanceId: a.id, url: a.url, scopes: ['*'], outboundKey: bToA, inboundKey: aToB }), 201);

    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 720 } });
    s.onCleanup(() => context.close());
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));

    // Sign in: the token goes in the form, then only in the socket's first message.
    const requestedUrls: string[] = [];
    page.on('request', (request) => requestedUrls.push(request.url()));
    await page.goto(`${a.url}/ui`);
    await page.fill('#token', 'kite_mistyped');
    await page.click('#login button[type="submit"]');
    await page.waitForFunction(() => document.querySelector('#login-error')?.textContent?.includes('not accepted'), undefined, { timeout: DOM_TIMEOUT_MS });
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#login button[type="submit"]');
    await page.waitForSelector('#connection[data-connection="live"]', { timeout: DOM_TIMEOUT_MS });
    await page.waitForFunction(() => document.querySelector('#instance-id')?.textContent === 'kite-a', undefined, { timeout: DOM_TIMEOUT_MS });
    await peerRow(page, aPeerId, 'healthy', { pending: '0', delivered: '0' });
    // A listener connects to A: the page counts it.
    await s.listen(a);
    await page.waitForFunction(() => document.querySelector('#instance-meta')?.textContent?.includes('1 listener on this node'),
      undefined, { timeout: DOM_TIMEOUT_MS });
    await page.waitForSelector(`section[data-team="${TEAM}"] .team-meta >> text=listeners connected`, { timeout: DOM_TIMEOUT_MS });

    // B stops (before any delivery: A holds no keep-alive connection to it that would keep its
    // port from being bound again): the page shows A's peer backing off, its queue and last error.
    await s.down(b);
    await ingestMany(a, 3);
    await peerRow(page, aPeerId, 'backing-off', { pending: '3' });
    expect(await page.textContent(`tr[data-peer-id="${aPeerId}"] [data-field="lastError"]`)).not.toBe('');
    await page.waitForFunction(() => [...document.querySelectorAll('#events tbody td')].some((td) => td.textContent?.includes('healthy → backing-off')),
      undefined, { timeout: DOM_TIMEOUT_MS });

    // B is back on the same port: healthy again, and the queue drains.
    const b2 = await s.restart(b);
    await peerRow(page, aPeerId, 'healthy', { pending: '0', delivered: '3' });
    // Events flow: the delivered count follows.
    await ingestMany(a, 2);
    await peerRow(page, aPeerId, 'healthy', { pending: '0', delivered: '5' });

    // B stops accepting A's key (two rotations of its inbound key, so that the previous one no
    // longer verifies either): A's peer is dead-lettered and holds what it could not deliver.
    // Probes are slow now, so within the test only the redrive can bring it back.
    await patchPeer(a, aPeerId, { retry: { maxDelayMs: 300_000 } });
    const patchB = async (inboundKey: string) =>
      expectStatus(await b2.kite.api.request('PATCH', `/v1/teams/${TEAM}/peers/${bPeerId}`, { inboundKey }), 200);
    await patchB(peerKey());
    await patchB(peerKey());
    const held = await ingestMany(a, 2);
    await peerRow(page, aPeerId, 'dead-lettered', { deadLettered: '2', pending: '0' });
    await page.waitForSelector(`tr[data-peer-id="${aPeerId}"] button[data-action="redrive"]:not([disabled])`, { timeout: DOM_TIMEOUT_MS });
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'status-page.png'), fullPage: true });

    // B takes A's key again; A's peer stays dead-lettered until the redrive button is pressed,
    // then it is healthy and the held events arrive at B, in order.
    await patchB(aToB);
    expect((await getPeer(a, aPeerId)).state).toBe('dead-lettered');
    await page.click(`tr[data-peer-id="${aPeerId}"] button[data-action="redrive"]`);
    await page.waitForFunction(() => document.querySelector('#notice')?.textContent?.includes('2 event(s) back in its queue'), undefined, { timeout: DOM_TIMEOUT_MS });
    await peerRow(page, aPeerId, 'healthy', { deadLettered: '0', pending: '0', delivered: '7' });
    const atB = await until(async () => {
      const ids = (await stream(b2, 'stripe.*')).map((e) => e['id'] as string);
      return held.every((e) => ids.includes(e.id)) ? ids : undefined;
    }, 'the redriven events at B');
    expect(atB.slice(-2)).toEqual(held.map((e) => e.id));

    // Pause and resume from the page, seen through the API.
    await page.click(`tr[data-peer-id="${aPeerId}"] button[data-action="toggle"]`);
    await page.waitForSelector(`tr[data-peer-id="${aPeerId}"][data-enabled="false"] .paused`, { timeout: DOM_TIMEOUT_MS });
    expect((await getPeer(a, aPeerId)).enabled).toBe(false);
    await page.click(`tr[data-peer-id="${aPeerId}"] button[data-action="toggle"]`);
    await page.waitForSelector(`tr[data-peer-id="${aPeerId}"][data-enabled="true"]`, { timeout: DOM_TIMEOUT_MS });
    expect((await getPeer(a, aPeerId)).enabled).toBe(true);

    expect(pageErrors).toEqual([]);
    expect(requestedUrls.filter((url) => url.includes(ADMIN_TOKEN))).toEqual([]);
  });
});
