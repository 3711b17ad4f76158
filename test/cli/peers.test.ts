import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommand } from '../../src/cli/args.js';
import { peers } from '../../src/cli/commands/peers.js';
import { shellQuote } from '../../src/cli/commands/peers-add.js';
import { newPeerBody } from '../../src/cli/commands/peers-flags.js';
import { assertFreshBuild, cleanEnv, kiteAgainst, runKite, startFakeKite, tempDir, type Answer, type FakeKite, type Recorded } from './helpers.js';

assertFreshBuild();

let fake: FakeKite;
beforeAll(async () => {
  fake = await startFakeKite();
});
afterAll(() => fake.close());

const SELF = { instanceId: 'kite-a', publicUrl: 'https://a.kite.example.com', version: '0.1.0' };
const OUT_KEY = 'whsec_b3V0Ym91bmQta2V5LW9mLWEtZm9yLWItMDEyMzQ1Njc=';
const IN_KEY = 'whsec_aW5ib3VuZC1rZXktb2YtYS1mb3ItYi0wMTIzNDU2Nzg5';

function peerObject(overrides: Record<string, unknown> = {}) {
  return {
    id: 'peer_1',
    instanceId: 'kite-b',
    url: 'https://b.kite.example.com',
    remoteTeam: 'acme',
    scopes: ['stripe.*'],
    maxHops: 3,
    rateLimit: { perSecond: 100, burst: 200 },
    inboundRateLimit: { perSecond: 1000, burst: 2000 },
    retry: { maxAttempts: 20, initialDelayMs: 1000, maxDelayMs: 300000, timeoutMs: 10000 },
    enabled: true,
    state: 'healthy',
    pending: 0,
    delivered: 0,
    deadLettered: 0,
    lastError: null,
    createdAt: '2026-11-27T20:00:00.000Z',
    ...overrides,
  };
}

type Route = (req: Recorded) => Answer | undefined;

/** The fake answers GET /v1/instance with SELF, and everything else with `answer`. */
function withInstance(answer: Answer | Route, self: unknown = SELF): (req: Recorded) => Answer {
  return (req) => {
    if (req.method === 'GET' && req.url === '/v1/instance') return { status: 200, body: self };
    const a = typeof answer === 'function' ? answer(req) : answer;
    return a ?? { status: 500, body: { error: { code: 'internal_error', message: 'unexpected request' } } };
  };
}

const kite = kiteAgainst(() => fake);

const sent = (r: Recorded) => [r.method, r.url, r.body === '' ? undefined : JSON.parse(r.body)];

/** Splits a POSIX shell command line as `shellQuote` writes it: bare words and '…' (with '\''). */
function shellSplit(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === ' ') {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end === -1) throw new Error(`unterminated quote in ${line}`);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (c === '\\') {
      word = (word ?? '') + line[++i];
    } else {
      if (!/[A-Za-z0-9_@%+=:,./-]/.test(c)) throw new Error(`unquoted shell metacharacter ${c} in ${line}`);
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The pairing command printed on stderr: the one indented line starting with `kite peers add`. */
function pairingArgs(stderr: string): string[] {
  const lines = stderr.split('\n').filter((l) => l.startsWith('  kite peers add '));
  expect(lines).toHaveLength(1);
  const words = shellSplit(lines[0]!.trim());
  expect(words.slice(0, 3)).toEqual(['kite', 'peers', 'add']);
  return words.slice(1);
}

describe('kite peers add', () => {
  it('peers add - asks the instance, POSTs only the given fields, prints the peer with its keys', async () => {
    const created = { ...peerObject(), outboundKey: OUT_KEY, inboundKey: IN_KEY };
    const r = await kite(
      ['peers', 'add', '--team', 'acme', '--instance-id', 'kite-b', '--url', 'https://b.kite.example.com', '--scopes', 'stripe.*'],
      withInstance({ status: 201, body: created }),
    );
    expect(r.code).toBe(0);
    expect(r.sent.map(sent)).toEqual([
      ['GET', '/v1/instance', undefined],
      ['POST', '/v1/teams/acme/peers', { instanceId: 'kite-b', url: 'https://b.kite.example.com', scopes: ['stripe.*'] }],
    ]);
    expect(r.sent[1]!.headers['authorization']).toBe('Bearer tok_test');
    expect(r.sent[1]!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.stdout)).toEqual(created);
    expect(r.stderr).toContain('shown only this once');
    expect(r.stderr).toMatch(/contains both secret keys/);
    expect(r.stderr).not.toContain('Warning');
    // The command for the other side: its team is our remoteTeam, our instance and URL, keys swapped.
    expect(pairingArgs(r.stderr)).toEqual([
      'peers', 'add', '--team', 'acme', '--instance-id', 'kite-a', '--url', 'https://a.kite.example.com',
      '--scopes', 'stripe.*', '--outbound-key', IN_KEY, '--inbound-key', OUT_KEY,
    ]);
  });

  it('peers add - every flag maps to its field; partial rate limits and retry send only what was given', async () => {
    const created = {
      ...peerObject({ remoteTeam: 'acme-eu', scopes: ['stripe.*', 'github.*', 'com.acme.*'], enabled: false }),
      outboundKey: OUT_KEY,
      inboundKey: IN_KEY,
    };
    const r = await kite(
      [
        'peers', 'add', '--team', 'acme', '--instance-id', 'kite-b', '--url', 'https://b.kite.example.com/base/',
        '--remote-team', 'acme-eu', '--scopes', 'stripe.*, github.*', '--scopes', 'com.acme.*', '--max-hops', '2',
        '--rate-limit', '50', '--inbound-rate-limit', '0.5/10', '--max-attempts', '5', '--initial-delay-ms', '500',
        '--max-delay-ms', '60000', '--disabled', '--outbound-key', OUT_KEY, '--inbound-key', IN_KEY,
      ],
      withInstance({ status: 201, body: created }),
    );
    expect(r.code).toBe(0);
    expect(sent(r.sent[1]!)).toEqual([
      'POST',
      '/v1/teams/acme/peers',
      {
        instanceId: 'kite-b',
        url: 'https://b.kite.example.com/base/',
        remoteTeam: 'acme-eu',
        scopes: ['stripe.*', 'github.*', 'com.acme.*'],
        maxHops: 2,
        rateLimit: { perSecond: 50 },
        inboundRateLimit: { perSecond: 0.5, burst: 10 },
        retry: { maxAttempts: 5, initialDelayMs: 500, maxDelayMs: 60000 },
        enabled: false,
        outboundKey: OUT_KEY,
        inboundKey: IN_KEY,
      },
    ]);
    // The other side's team is acme-eu, and its remote team is ours (acme), named because it differs.
    expect(pairingArgs(r.stderr)).toEqual([
      'peers', 'add', '--team', 'acme-eu', '--instance-id', 'kite-a', '--url', 'https://a.kite.example.com',
      '--remote-team', 'acme', '--scopes', 'stripe.*,github.*,com.acme.*', '--outbound-key', IN_KEY, '--inbound-key', OUT_KEY,
    ]);
  });

  it('peers add - the printed pairing command is accepted by kite and sends the mirrored peer', async () => {
    const created = { ...peerObject({ remoteTeam: 'acme-eu', scopes: ['stripe.*', 'github.*'] }), outboundKey: OUT_KEY, inboundKey: IN_KEY };
    const first = await kite(
      ['peers', 'add', '--team', 'acme', '--instance-id', 'kite-b', '--url', 'https://b.kite.example.com', '--remote-team', 'acme-eu', '--scopes', 'stripe.*,github.*'],
      withInstance({ status: 201, body: created }),
    );
    expect(first.code).toBe(0);
    const args = pairingArgs(first.stderr);

    // Through the parser in-process: the same spec the built CLI uses.
    const parsed = parseCommand(args.slice(2), peers.subcommands['add']!.spec);
    expect(parsed).not.toBe('help');
    const mirrored = {
      instanceId: 'kite-a',
      url: 'https://a.kite.example.com',
      remoteTeam: 'acme',
      scopes: ['stripe.*', 'github.*'],
      outboundKey: IN_KEY,
      inboundKey: OUT_KEY,
    };
    expect(newPeerBody(parsed as Exclude<typeof parsed, 'help'>)).toEqual(mirrored);

    // And run for real on "the other instance".
    const other = { instanceId: 'kite-b', publicUrl: 'https://b.kite.example.com', version: '0.1.0' };
    const second = await kite(args, withInstance({ status: 201, body: { ...peerObject({ instanceId: 'kite-a' }), outboundKey: IN_KEY, inboundKey: OUT_KEY } }, other));
    expect(second.code).toBe(0);
    expect(sent(second.sent[1]!)).toEqual(['POST', '/v1/teams/acme-eu/peers', mirrored]);
    // The second half says the pairing is complete (the command back is only for keys chosen by hand).
    expect(second.stderr).toContain("Both keys were given: if this ran the command that 'kite peers add' printed on kite-a, the pairing is complete.");
    expect(first.stderr).not.toContain('Both keys were given');
  });

  it('peers add - warns when this instance has no https:// public URL, since the peer would refuse it', async () => {
    const r = await kite(
      ['peers', 'add', '--team', 'acme', '--instance-id', 'kite-b', '--url', 'https://b.kite.example.com', '--scopes', '*'],
      withInstance(
        { status: 201, body: { ...peerObject({ scopes: ['*'] }), outboundKey: OUT_KEY, inboundKey: IN_KEY } },
        { instanceId: 'kite-local', publicUrl: 'http://localhost:8787', version: '0.1.0' },
      ),
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("Warning: this instance's public URL http://localhost:8787 is not https://");
    expect(r.stderr).toContain("--scopes '*'");
  });

  it('peers add - --kite-url names the Kite to talk to (--url is the peer)', async () => {
    const r = await kite(
      ['peers', 'add', '--team', 'acme', '--instance-id', 'kite-b', '--url', 'https://b.kite.example.com', '--scopes', 'x.*', '--kite-url', fake.url],
      withInstance({ status: 201, body: { ...peerObject(), outboundKey: OUT_KEY, inboundKey: IN_KEY } }),
      { env: { KITE_URL: 'http://127.0.0.1:1' } },
    );
    expect(r.code).toBe(0);
    expect(r.sent).toHaveLength(2);
  });

  it('peers add - an API refusal is one line, exit 1, nothing on stdout', async () => {
    const r = await kite(
      ['peers', 'add', '--team', 'acme', '--instance-id', 'kite-b', '--url', 'https://b.kite.example.com', '--scopes', 'stripe.*'],
      withInstance({ status: 409, body: { error: { code: 'conflict', message: 'Instance kite-b is already a peer of this team.' } } }),
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('kite: HTTP 409 conflict: Instance kite-b is already a peer of this team.\n');
  });

  it('peers add - when /v1/instance fails nothing is created', async () => {
    const r = await kite(
      ['peers', 'add', '--team', 'acme', '--instance-id', 'kite-b', '--url', 'https://b.kite.example.com', '--scopes', 'stripe.*'],
      { status: 503, body: { error: { code: 'unavailable', message: 'The database is unavailable.' } } },
    );
    expect(r.code).toBe(1);
    expect(r.sent.map((s) => s.url)).toEqual(['/v1/instance']);
    expect(r.stderr).toBe('kite: HTTP 503 unavailable: The database is unavailable.\n');
  });
});

describe('kite peers list, show, pause, resume, rm, redrive, deliveries', () => {
  it('list and show - GET the peers, or one peer by id (encoded as one path segment)', async () => {
    const list = await kite(['peers', 'list', '--team', 'acme'], { status: 200, body: { items: [peerObject()] } });
    expect([list.code, list.sent.map(sent)]).toEqual([0, [['GET', '/v1/teams/acme/peers', undefined]]]);
    expect(JSON.parse(list.stdout).items[0].id).toBe('peer_1');

    const show = await kite(['peers', 'show', '--team', 'acme', 'peer/1'], { status: 200, body: peerObject() });
    expect([show.code, show.sent.map(sent)]).toEqual([0, [['GET', '/v1/teams/acme/peers/peer%2F1', undefined]]]);
    expect(JSON.parse(show.stdout)).toEqual(peerObject());
  });

  it('pause and resume - PATCH enabled false / true and print the peer', async () => {
    const pause = await kite(['peers', 'pause', '--team', 'acme', 'peer_1'], { status: 200, body: peerObject({ enabled: false }) });
    expect([pause.code, pause.sent.map(sent)]).toEqual([0, [['PATCH', '/v1/teams/acme/peers/peer_1', { enabled: false }]]]);
    expect(JSON.parse(pause.stdout).enabled).toBe(false);

    const resume = await kite(['peers', 'resume', '--team', 'acme', 'peer_1'], { status: 200, body: peerObject() });
    expect([resume.code, resume.sent.map(sent)]).toEqual([0, [['PATCH', '/v1/teams/acme/peers/peer_1', { enabled: true }]]]);
  });

  it('rm and redrive - DELETE the peer; POST …/redrive and print {requeued}', async () => {
    const rm = await kite(['peers', 'rm', '--team', 'acme', 'peer_1'], { status: 204 });
    expect([rm.code, rm.sent.map(sent), rm.stdout]).toEqual([0, [['DELETE', '/v1/teams/acme/peers/peer_1', undefined]], 'removed peer peer_1\n']);

    const redrive = await kite(['peers', 'redrive', '--team', 'acme', 'peer_1'], { status: 200, body: { requeued: 7 } });
    expect([redrive.code, redrive.sent.map(sent)]).toEqual([0, [['POST', '/v1/teams/acme/peers/peer_1/redrive', undefined]]]);
    expect(redrive.sent[0]!.headers['content-type']).toBeUndefined();
    expect(JSON.parse(redrive.stdout)).toEqual({ requeued: 7 });
  });

  it('deliveries - sends only the filters given', async () => {
    const all = await kite(['peers', 'deliveries', '--team', 'acme'], { status: 200, body: { items: [] } });
    expect([all.code, all.sent.map(sent)]).toEqual([0, [['GET', '/v1/teams/acme/deliveries', undefined]]]);

    const some = await kite(['peers', 'deliveries', '--team', 'acme', '--peer', 'peer_1', '--status', 'dead_lettered', '--limit', '20'], {
      status: 200,
      body: { items: [] },
    });
    expect(some.sent.map(sent)).toEqual([['GET', '/v1/teams/acme/deliveries?peer=peer_1&status=dead_lettered&limit=20', undefined]]);
  });

  it('an API error is one line, exit 1', async () => {
    const r = await kite(['peers', 'show', '--team', 'acme', 'nope'], { status: 404, body: { error: { code: 'not_found', message: 'Peer "nope" does not exist.' } } });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('kite: HTTP 404 not_found: Peer "nope" does not exist.\n');
  });
});

describe('kite peers usage errors', () => {
  const ADD = ['peers', 'add', '--team', 'acme', '--instance-id', 'kite-b'];
  const URL_OK = ['--url', 'https://b.kite.example.com'];
  const SCOPES = ['--scopes', 'stripe.*'];

  it.each([
    [[...ADD, '--url', 'http://b.kite.example.com', ...SCOPES], "--url must be the peer's https:// URL"],
    [[...ADD, '--url', 'b.kite.example.com', ...SCOPES], "--url must be the peer's https:// URL"],
    [[...ADD, '--url', 'https://user:pw@b.example.com', ...SCOPES], '--url must not carry credentials'],
    [[...ADD, '--url', 'https://', ...SCOPES], '--url is not a valid URL'],
    [[...ADD, ...SCOPES], 'missing required flag --url'],
    [[...ADD, ...URL_OK], 'missing required flag --scopes'],
    [['peers', 'add', '--team', 'acme', ...URL_OK, ...SCOPES], 'missing required flag --instance-id'],
    [['peers', 'add', '--team', 'acme', '--instance-id', 'Kite B', ...URL_OK, ...SCOPES], "instance ID 'Kite B' is not a slug"],
    [['peers', 'add', '--team', 'Acme', '--instance-id', 'kite-b', ...URL_OK, ...SCOPES], "team 'Acme' is not a slug"],
    [[...ADD, ...URL_OK, ...SCOPES, '--remote-team', 'ACME'], "remote team 'ACME' is not a slug"],
    [[...ADD, ...URL_OK, '--scopes', 'stripe.*,,github.*'], '--scopes has an empty pattern'],
    [[...ADD, ...URL_OK, '--scopes', 'stripe events'], "--scopes pattern 'stripe events' may contain only"],
    [[...ADD, ...URL_OK, ...SCOPES, '--max-hops', '0'], '--max-hops must be a whole number from 1 to 16'],
    [[...ADD, ...URL_OK, ...SCOPES, '--max-hops', '17'], '--max-hops must be a whole number from 1 to 16'],
    [[...ADD, ...URL_OK, ...SCOPES, '--max-hops', 'three'], '--max-hops must be a whole number'],
    [[...ADD, ...URL_OK, ...SCOPES, '--rate-limit', 'fast'], '--rate-limit must be PER_SEC or PER_SEC/BURST'],
    [[...ADD, ...URL_OK, ...SCOPES, '--rate-limit', '0'], '--rate-limit must be PER_SEC or PER_SEC/BURST'],
    [[...ADD, ...URL_OK, ...SCOPES, '--inbound-rate-limit', '10/0'], '--inbound-rate-limit must be PER_SEC or PER_SEC/BURST'],
    [[...ADD, ...URL_OK, ...SCOPES, '--inbound-rate-limit', '10/2.5'], '--inbound-rate-limit must be PER_SEC or PER_SEC/BURST'],
    [[...ADD, ...URL_OK, ...SCOPES, '--max-attempts', '1001'], '--max-attempts must be a whole number from 1 to 1000'],
    [[...ADD, ...URL_OK, ...SCOPES, '--timeout-ms', '600001'], '--timeout-ms must be a whole number from 1 to 600000'],
    [[...ADD, ...URL_OK, ...SCOPES, '--initial-delay-ms', '5000', '--max-delay-ms', '1000'], '--max-delay-ms (1000) must not be below --initial-delay-ms (5000)'],
    [[...ADD, ...URL_OK, ...SCOPES, '--outbound-key', 'hunter2'], "--outbound-key must be a Standard Webhooks secret"],
    [[...ADD, ...URL_OK, ...SCOPES, '--inbound-key', 'whsec_'], "--inbound-key must be a Standard Webhooks secret"],
    [[...ADD, ...URL_OK, ...SCOPES, '--kite-url', 'ftp://x'], '--kite-url must be an http:// or https:// URL'],
    [[...ADD, ...URL_OK, ...SCOPES, '--disabled=yes'], "--disabled"],
    [['peers', 'invite', '--team', 'acme', '--instance-id', 'kite-b', ...URL_OK, ...SCOPES, '--return-scopes', 'stripe.*,'], '--return-scopes has an empty pattern'],
    [['peers', 'invite', '--team', 'acme', '--instance-id', 'kite-b', ...URL_OK, ...SCOPES, '--return-scopes', 'a b'], "--return-scopes pattern 'a b' may contain only"],
    [['peers', 'show', '--team', 'acme'], 'missing argument <id>'],
    [['peers', 'show', '--team', 'acme', ''], '<id> must not be empty'],
    [['peers', 'pause', '--team', 'acme'], 'missing argument <id>'],
    [['peers', 'rm', '--team', 'acme', 'a', 'b'], "unexpected argument 'b'"],
    [['peers', 'list'], 'missing required flag --team'],
    [['peers', 'deliveries', '--team', 'acme', '--status', 'failed'], '--status must be one of pending, delivered, dead_lettered'],
    [['peers', 'deliveries', '--team', 'acme', '--limit', '0'], '--limit must be a whole number from 1 to 1000'],
    [['peers', 'deliveries', '--team', 'acme', '--limit', '1001'], '--limit must be a whole number from 1 to 1000'],
    [['peers', 'delete', '--team', 'acme', 'x'], "unknown subcommand 'delete'"],
  ])('%j is refused with one line before anything is sent, exit 2', async (args, message) => {
    const r = await kite(args, withInstance({ status: 201, body: {} }));
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(message);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^kite: .*Run 'kite peers( \w+)? --help' for usage\.\n$/);
    expect(r.sent).toEqual([]);
  });
});

describe('shellQuote', () => {
  it('leaves safe words bare and single-quotes the rest, round-tripping through a shell split', () => {
    const words = ['kite', 'stripe.*', "it's", 'a b', 'whsec_ab+/cd==', 'https://a.example.com/x', '*'];
    expect(words.map(shellQuote)).toEqual(['kite', "'stripe.*'", `'it'\\''s'`, "'a b'", 'whsec_ab+/cd==', 'https://a.example.com/x', "'*'"]);
    expect(shellSplit(words.map(shellQuote).join(' '))).toEqual(words);
  });
});

describe('kite bench', () => {
  it('bench --help lists the scenarios (from run.js --help), exit 0, starts nothing', async () => {
    const dir = tempDir();
    const r = await runKite(['bench', '--help'], { cwd: dir, env: cleanEnv(dir) });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('kite bench — ');
    expect(r.stdout).toContain('Usage:');
    expect(r.stdout).toMatch(/^\s+ingest\b/m);
    expect(r.stdout).toMatch(/^\s+fanout\b/m);
    const viaHelp = await runKite(['help', 'bench'], { cwd: dir, env: cleanEnv(dir) });
    expect(viaHelp).toEqual(r);
  });

  it('bench without a scenario is a usage error, exit 2', async () => {
    const dir = tempDir();
    const r = await runKite(['bench'], { cwd: dir, env: cleanEnv(dir) });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^kite: missing <scenario>.*Run 'kite bench --help' for usage\.\n$/);
  });

  it("bench passes the scenario to run.js and exits with run.js's code", async () => {
    const dir = tempDir();
    const r = await runKite(['bench', 'no-such-scenario'], { cwd: dir, env: cleanEnv(dir) });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown scenario "no-such-scenario"');
  });
});
