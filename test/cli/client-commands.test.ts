import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertFreshBuild, kiteAgainst, startFakeKite, tempDir, type FakeKite, type Recorded } from './helpers.js';
import { makeTestTls } from '../support/tls.js';

assertFreshBuild();

let fake: FakeKite;
beforeAll(async () => {
  fake = await startFakeKite();
});
afterAll(() => fake.close());

const kite = kiteAgainst(() => fake);

function only(sent: Recorded[]): Recorded {
  expect(sent).toHaveLength(1);
  return sent[0]!;
}

describe('cli client commands', () => {
  it('teams create - POSTs the slug with the bearer token and prints the answer', async () => {
    const r = await kite(['teams', 'create', 'acme'], { status: 201, body: { slug: 'acme' } });
    expect(r.code).toBe(0);
    const req = only(r.sent);
    expect([req.method, req.url]).toEqual(['POST', '/v1/teams']);
    expect(req.headers['authorization']).toBe('Bearer tok_test');
    expect(req.headers['content-type']).toBe('application/json');
    expect(JSON.parse(req.body)).toEqual({ slug: 'acme' });
    expect(JSON.parse(r.stdout)).toEqual({ slug: 'acme' });
  });

  it("teams create - without a token it uses the server's admin-token file, trimmed", async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, '.kite'));
    writeFileSync(path.join(dir, '.kite', 'admin-token'), 'kite_admin_from_file\n');
    const r = await kite(['teams', 'create', 'acme'], { status: 201, body: { slug: 'acme' } }, { dir, env: { KITE_TOKEN: '' } });
    expect(r.code).toBe(0);
    expect(only(r.sent).headers['authorization']).toBe('Bearer kite_admin_from_file');
  });

  it('client - --token and --url win over the environment', async () => {
    const r = await kite(['teams', 'create', 'acme', '--token', 'tok_flag', '--url', `${fake.url}/`], { status: 201, body: { slug: 'acme' } }, {
      env: { KITE_URL: 'http://127.0.0.1:1' },
    });
    expect(r.code).toBe(0);
    expect(only(r.sent).headers['authorization']).toBe('Bearer tok_flag');
  });

  it('client - with no token anywhere it says how to get one, exit 1, and sends nothing', async () => {
    const r = await kite(['teams', 'create', 'acme'], { status: 201 }, { env: { KITE_TOKEN: '' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^kite: no token: pass --token, set KITE_TOKEN, or run 'kite serve' once so .*admin-token exists\n$/);
    expect(r.sent).toEqual([]);
  });

  it("client - a Kite error body becomes one line with status, code and message, exit 1", async () => {
    const r = await kite(['teams', 'create', 'acme'], { status: 409, body: { error: { code: 'conflict', message: 'Team acme exists already.' } } });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('kite: HTTP 409 conflict: Team acme exists already.\n');
  });

  it('client - an unreachable Kite is one line naming the URL, exit 1', async () => {
    // A port that was just free: nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const r = await kite(['keys', 'list', '--team', 'acme'], { status: 200 }, { env: { KITE_URL: `http://127.0.0.1:${port}` } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^kite: cannot reach Kite at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\).*\n$`));
  });

  it('client - a Kite whose certificate is not trusted, or plain HTTP to a TLS port, is one line saying so and what to do, not "is kite serve running?"', async () => {
    const tls = makeTestTls();
    const server = createTlsServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }, (_req, res) => res.end('{}'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const untrusted = await kite(['keys', 'list', '--team', 'acme'], { status: 200 }, { env: { KITE_URL: `https://localhost:${port}` } });
      expect(untrusted.code).toBe(1);
      expect(untrusted.stderr).toMatch(/^kite: Kite at https:\/\/localhost:\d+ answered with a certificate this machine does not trust \(\w+\); for a private CA, run with NODE_EXTRA_CA_CERTS=<its PEM file>\n$/);
      const plain = await kite(['keys', 'list', '--team', 'acme'], { status: 200 }, { env: { KITE_URL: `http://127.0.0.1:${port}` } });
      expect(plain.code).toBe(1);
      expect(plain.stderr).toMatch(/^kite: Kite at http:\/\/127\.0\.0\.1:\d+ closed the connection without an answer \(\w+\); if it serves HTTPS \(KITE_TLS_CERT_FILE\), use an https:\/\/ URL\n$/);
    } finally {
      server.close();
      rmSync(tls.dir, { recursive: true, force: true });
    }
  });

  it('keys create - POSTs name and role, prints the key, and reminds on stderr that it is shown once', async () => {
    const created = { id: 'key_1', name: 'ci', role: 'agent', key: 'kite_secret_abc' };
    const r = await kite(['keys', 'create', '--team', 'acme', '--name', 'ci', '--role', 'agent'], { status: 201, body: created });
    expect(r.code).toBe(0);
    const req = only(r.sent);
    expect([req.method, req.url]).toEqual(['POST', '/v1/teams/acme/keys']);
    expect(JSON.parse(req.body)).toEqual({ name: 'ci', role: 'agent' });
    expect(JSON.parse(r.stdout)).toEqual(created);
    expect(r.stderr).toMatch(/^This key is shown only once.*\n$/);
  });

  it('keys list and revoke - GET the list, DELETE one key by id', async () => {
    const list = await kite(['keys', 'list', '--team', 'acme'], { status: 200, body: { items: [{ id: 'key_1', name: 'ci', role: 'agent' }] } });
    expect(list.code).toBe(0);
    expect([only(list.sent).method, only(list.sent).url]).toEqual(['GET', '/v1/teams/acme/keys']);
    expect(JSON.parse(list.stdout).items[0].id).toBe('key_1');

    const revoke = await kite(['keys', 'revoke', '--team', 'acme', 'key/1'], { status: 204 });
    expect(revoke.code).toBe(0);
    // The id is one path segment even if it holds a slash.
    expect([only(revoke.sent).method, only(revoke.sent).url]).toEqual(['DELETE', '/v1/teams/acme/keys/key%2F1']);
    expect(revoke.stdout).toBe('revoked key key/1\n');
  });

  it('sources add - POSTs name, provider and secret and prints only the ingest URL', async () => {
    const url = 'http://localhost:8787/hooks/acme/stripe';
    const r = await kite(['sources', 'add', '--team', 'acme', '--name', 'stripe', '--provider', 'stripe', '--secret', 'whsec_x'], {
      status: 201,
      body: { name: 'stripe', provider: 'stripe', url },
    });
    expect(r.code).toBe(0);
    const req = only(r.sent);
    expect([req.method, req.url]).toEqual(['POST', '/v1/teams/acme/sources']);
    expect(JSON.parse(req.body)).toEqual({ name: 'stripe', provider: 'stripe', secret: 'whsec_x' });
    expect(r.stdout).toBe(`${url}\n`);
  });

  it('sources add - reads the secret from --secret-file', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'secret'), 'gh_secret\n');
    const r = await kite(['sources', 'add', '--team', 'acme', '--name', 'gh', '--provider', 'github', '--secret-file', 'secret'], {
      status: 201,
      body: { name: 'gh', provider: 'github', url: 'http://k/hooks/acme/gh' },
    }, { dir });
    expect(r.code).toBe(0);
    expect(JSON.parse(only(r.sent).body)).toEqual({ name: 'gh', provider: 'github', secret: 'gh_secret' });
  });

  it('sources list and rm - GET the list, DELETE by name', async () => {
    const list = await kite(['sources', 'list', '--team', 'acme'], { status: 200, body: { items: [] } });
    expect([only(list.sent).method, only(list.sent).url, list.code]).toEqual(['GET', '/v1/teams/acme/sources', 0]);
    const rm = await kite(['sources', 'rm', '--team', 'acme', 'stripe'], { status: 204 });
    expect([only(rm.sent).method, only(rm.sent).url, rm.code]).toEqual(['DELETE', '/v1/teams/acme/sources/stripe', 0]);
    expect(rm.stdout).toBe('removed source stripe\n');
  });

  it('publish - POSTs a structured CloudEvent and prints {id, seq, duplicate} on one line', async () => {
    const r = await kite(
      ['publish', '--team', 'acme', '--type', 'com.kite.agent.message', '--data', '{"to":"bob","payload":[1,2]}', '--id', 'm-1', '--subject', 'hello'],
      { status: 202, body: { id: 'm-1', seq: 12, duplicate: false } },
    );
    expect(r.code).toBe(0);
    const req = only(r.sent);
    expect([req.method, req.url]).toEqual(['POST', '/v1/teams/acme/events']);
    expect(req.headers['content-type']).toBe('application/cloudevents+json');
    expect(req.headers['authorization']).toBe('Bearer tok_test');
    expect(JSON.parse(req.body)).toEqual({
      specversion: '1.0',
      type: 'com.kite.agent.message',
      id: 'm-1',
      subject: 'hello',
      datacontenttype: 'application/json',
      data: { to: 'bob', payload: [1, 2] },
    });
    expect(r.stdout).toBe('{"id":"m-1","seq":12,"duplicate":false}\n');
  });

  it('publish - reads the data from stdin, or from --data-file', async () => {
    const viaStdin = await kite(['publish', '--team', 'acme', '--type', 'com.acme.order'], { status: 202, body: { id: 'x', seq: 1, duplicate: false } }, {
      input: '{"total": 42}\n',
    });
    expect(viaStdin.code).toBe(0);
    expect(JSON.parse(only(viaStdin.sent).body).data).toEqual({ total: 42 });

    const dir = tempDir();
    writeFileSync(path.join(dir, 'order.json'), '[null, "x"]');
    const viaFile = await kite(['publish', '--team', 'acme', '--type', 'com.acme.order', '--data-file', 'order.json'], {
      status: 202,
      body: { id: 'y', seq: 2, duplicate: false },
    }, { dir });
    expect(viaFile.code).toBe(0);
    expect(JSON.parse(only(viaFile.sent).body).data).toEqual([null, 'x']);
  });

  it('publish - with empty stdin and no --data the event carries no data, and Kite picks the id', async () => {
    const r = await kite(['publish', '--team', 'acme', '--type', 'com.acme.ping'], { status: 202, body: { id: 'gen', seq: 3, duplicate: false } }, { input: '' });
    expect(r.code).toBe(0);
    expect(JSON.parse(only(r.sent).body)).toEqual({ specversion: '1.0', type: 'com.acme.ping' });
  });

  it('publish - a reserved type refused by Kite is reported in one line, exit 1', async () => {
    const r = await kite(['publish', '--team', 'acme', '--type', 'kite.x', '--data', '{}'], {
      status: 400,
      body: { error: { code: 'reserved_type', message: 'Event types starting with "kite." are reserved.' } },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('kite: HTTP 400 reserved_type: Event types starting with "kite." are reserved.\n');
  });
});
