/**
 * `kite peers invite` / `kite peers accept` (issue 6, "pairing in one step"), run as the built
 * CLI against two real instances over TLS: an invite made on A and accepted on B pairs them both
 * ways with no key copied by hand; a bad invite gives one clear line and registers nothing.
 */
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeInvite, encodeInvite, INVITE_PREFIX, type Invite } from '../../src/cli/invite-token.js';
import { hasEvent, ingestAt, startInstance, type Instance } from '../support/federation.js';
import { ADMIN_TOKEN, expectStatus } from '../support/kite.js';
import { makeTestTls, type TestTls } from '../support/tls.js';
import { STRIPE_SECRET } from '../support/webhooks.js';
import { assertFreshBuild, cleanEnv, runKite, tempDir } from './helpers.js';

assertFreshBuild();

let tls: TestTls;
let a: Instance;
let b: Instance;

/** The built `kite` against `instance`, trusting the test CA like an operator with NODE_EXTRA_CA_CERTS. */
async function kiteAt(instance: Instance, args: string[]) {
  const dir = tempDir();
  return runKite(args, { cwd: dir, env: cleanEnv(dir, { KITE_URL: instance.url, KITE_TOKEN: ADMIN_TOKEN, NODE_EXTRA_CA_CERTS: tls.caFile }) });
}

async function peersOf(instance: Instance): Promise<Array<Record<string, unknown>>> {
  return expectStatus(await instance.kite.api.get('/v1/teams/acme/peers'), 200).body.items;
}

function reencode(token: string, change: (invite: Invite) => Record<string, unknown>): string {
  const invite = JSON.parse(Buffer.from(token.slice(INVITE_PREFIX.length), 'base64url').toString('utf8')) as Invite;
  return INVITE_PREFIX + Buffer.from(JSON.stringify(change(invite))).toString('base64url');
}

beforeAll(async () => {
  tls = makeTestTls();
  [a, b] = await Promise.all([startInstance('kite-a', tls), startInstance('kite-b', tls)]);
  for (const instance of [a, b]) {
    await instance.kite.api.createTeam('acme');
    await instance.kite.api.createSource('acme', 'stripe', 'stripe', STRIPE_SECRET);
  }
});

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  if (tls) rmSync(tls.dir, { recursive: true, force: true });
});

describe('kite peers invite / accept', () => {
  let token = '';

  it('peers invite - refuses a public URL that is not https:// before registering anything', async () => {
    const r = await kiteAt(a, ['peers', 'invite', '--team', 'acme', '--instance-id', 'kite-b', '--url', b.url, '--scopes', 'stripe.*', '--public-url', 'http://a.example.com']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--public-url is http:\/\/a\.example\.com: the other instance only accepts an https:\/\/ URL/);
    expect(r.stdout).toBe('');
    expect(await peersOf(a)).toEqual([]);
  });

  it('peers invite - registers the peer and prints one invite line holding the swapped keys, with a warning', async () => {
    const r = await kiteAt(a, ['peers', 'invite', '--team', 'acme', '--instance-id', 'kite-b', '--url', b.url, '--scopes', 'stripe.*', '--public-url', a.url, '--expires-in', '1h']);
    expect(r.stderr, r.stderr).toContain('holds both secret keys');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    token = lines[0]!;
    expect(token).toMatch(/^kite-invite-v1\.[A-Za-z0-9_-]+$/);
    expect(r.stderr).toContain('kite peers accept --team acme <the invite>');
    const [peer] = await peersOf(a);
    expect(peer).toMatchObject({ instanceId: 'kite-b', url: b.url, remoteTeam: 'acme', scopes: ['stripe.*'] });
    const invite = decodeInvite(token);
    expect(invite).toMatchObject({ instanceId: 'kite-a', url: a.url, team: 'acme', forInstanceId: 'kite-b', forTeam: 'acme', scopes: ['stripe.*'] });
    // The keys swapped: what B signs with is what A verifies with, and the other way round.
    const [keys] = await a.db.query<{ outbound_key: string; inbound_key: string }>('SELECT outbound_key, inbound_key FROM peers');
    expect(invite.outboundKey).toBe(keys!.inbound_key);
    expect(invite.inboundKey).toBe(keys!.outbound_key);
    expect(Date.parse(invite.expiresAt) - Date.now()).toBeGreaterThan(59 * 60_000);
    expect(Date.parse(invite.expiresAt) - Date.now()).toBeLessThanOrEqual(60 * 60_000);
  });

  it('peers accept - bad invites give one clear line each and register nothing', async () => {
    const expired = encodeInvite({ ...decodeInvite(token), expiresAt: new Date(Date.now() - 1000).toISOString() });
    const cases: Array<[string[], RegExp]> = [
      [['peers', 'accept', 'not-a-token'], /this is not a Kite invite: it should start with 'kite-invite-v1\.'/],
      [['peers', 'accept', token.replace('kite-invite-v1.', 'kite-invite-v2.')], /this invite is version 2, and this kite reads version 1 only/],
      [['peers', 'accept', token.slice(0, -12)], /this invite is damaged/],
      [['peers', 'accept', reencode(token, (i) => ({ ...i, url: 'http://kite-a.example.com' }))], /this invite is damaged or was edited: url must be an https:\/\/ URL/],
      [['peers', 'accept', reencode(token, (i) => ({ ...i, extra: true }))], /this invite is damaged or was edited/],
      // Checked as the server checks keys: an empty key is the invite's fault, not a flag's.
      [['peers', 'accept', reencode(token, (i) => ({ ...i, outboundKey: 'whsec_' }))], /this invite is damaged or was edited: outboundKey must be a whsec_ key/],
      [['peers', 'accept', expired], /this invite expired at .*: ask for a new one/],
      [['peers', 'accept', '--team', 'other', token], /this invite pairs team acme here .* not other: accept it with --team acme/],
    ];
    for (const [args, message] of cases) {
      const r = await kiteAt(b, args);
      expect(r.code, `${args.join(' ').slice(0, 60)}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
    }
    // The right invite at the wrong instance: A made it, and it is for B.
    const atA = await kiteAt(a, ['peers', 'accept', token]);
    expect(atA.code).toBe(1);
    expect(atA.stderr).toMatch(/this invite was made by kite-a itself; accept it on kite-b/);
    expect(await peersOf(b)).toEqual([]);
    expect(await peersOf(a)).toHaveLength(1);
  });

  it('peers accept - registers the inviter with the keys swapped, prints no secret, and events flow both ways', async () => {
    // An event stored at A before B accepts: B does not know A yet and answers 401, so A
    // dead-letters the peer and holds the event. Accept's signed probe makes A probe back at once.
    const early = (await ingestAt(a)).id;
    await expect.poll(async () => (await peersOf(a))[0]!['state'], { timeout: 15_000, interval: 100 }).toBe('dead-lettered');
    const r = await kiteAt(b, ['peers', 'accept', token]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain('whsec_');
    const printed = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(printed).toMatchObject({ instanceId: 'kite-a', url: a.url, remoteTeam: 'acme', scopes: ['stripe.*'], state: 'healthy' });
    expect(printed).not.toHaveProperty('outboundKey');
    expect(r.stderr).toMatch(/Paired team acme with team acme on kite-a/);
    expect(r.stderr).toMatch(/Delete the invite/);
    expect(r.stderr).toMatch(/kite-a accepted a signed probe from this instance/);
    // Well before A's own first probe (retry.maxDelayMs, 5 minutes by default).
    await expect.poll(() => hasEvent(b, early), { timeout: 15_000, interval: 100 }).toBe(true);
    expect(await peersOf(b)).toEqual([expect.objectContaining({ id: printed['id'], instanceId: 'kite-a' })]);

    const fromA = (await ingestAt(a)).id;
    const fromB = (await ingestAt(b)).id;
    await expect.poll(() => hasEvent(b, fromA), { timeout: 15_000, interval: 100 }).toBe(true);
    await expect.poll(() => hasEvent(a, fromB), { timeout: 15_000, interval: 100 }).toBe(true);
    // Both directions verified with the keys from the invite: nothing was refused or held.
    for (const instance of [a, b]) {
      const [peer] = await peersOf(instance);
      expect(peer).toMatchObject({ state: 'healthy', deadLettered: 0, lastError: null });
    }
  });

  it('peers accept - the same invite twice is refused by the server and changes nothing', async () => {
    const r = await kiteAt(b, ['peers', 'accept', token]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/HTTP 409 conflict: Instance "kite-a" is already a peer of this team/);
    expect(await peersOf(b)).toHaveLength(1);
  });

  it('peers invite/accept --help - explain themselves and start nothing', async () => {
    for (const name of ['invite', 'accept']) {
      const r = await kiteAt(a, ['peers', name, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`kite peers ${name} — `);
      expect(r.stdout).toMatch(/Example/);
    }
    expect(readFileSync(tls.caFile, 'utf8')).toContain('BEGIN CERTIFICATE');
  });
});
