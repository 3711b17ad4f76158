/**
 * Contract §3 operational routes (/healthz, /readyz, /metrics, /v1/instance), the HTTP API's
 * 404/405 answers, and §2 configuration (`loadConfig`): defaults, and one clear line naming the
 * variable for each bad value.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { expectError } from '../support/assertions.js';
import { ADMIN_TOKEN, expectStatus, startTestKite, type TestKite } from '../support/kite.js';
import { listen } from '../support/listener.js';
import { stripeWebhook } from '../support/signers.js';
import { metricsOf, sample, waitForMetrics } from '../support/metrics.js';
import { makeTestTls } from '../support/tls.js';

const STRIPE_SECRET = 'whsec_ops_metrics_secret_never_shown';
const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

let db: TestDatabase;
let kite: TestKite;
let team: { adminKey: string; agentKey: string; agentKeyId: string };

beforeAll(async () => {
  db = await createTestDatabase();
  kite = await startTestKite(db.url, { KITE_INSTANCE_ID: 'ops-test-1' });
  team = await kite.api.createTeam('acme');
  await kite.api.createSource('acme', 'pay', 'stripe', STRIPE_SECRET);
});

afterAll(async () => {
  await kite?.close();
  await db?.drop();
});

describe('ops - routes', () => {
  it('ops - /healthz answers 200 without auth', async () => {
    const answer = await kite.api.as(undefined).get('/healthz');
    expect(answer.status).toBe(200);
  });

  it('ops - /readyz answers 200 without auth when the database is migrated and reachable', async () => {
    const answer = await kite.api.as(undefined).get('/readyz');
    expect(answer.status).toBe(200);
  });

  it('ops - /metrics is Prometheus text: every line is a comment or a sample', async () => {
    const answer = await kite.api.as(undefined).get('/metrics');
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = answer.body as string;
    expect(typeof text).toBe('string');
    const lines = text.split('\n').filter((l) => l.length > 0);
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) {
      expect(line).toMatch(/^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+]?([0-9.e+-]+|NaN|Inf)( \d+)?)$/);
    }
    expect(text).toContain('# TYPE kite_ingest_requests_total counter');
    expect(text).toContain('# TYPE kite_listeners gauge');
  });

  it('ops - an ingest shows in kite_ingest_requests_total by team, source and outcome, and in the duration histogram', async () => {
    const text0 = await metricsOf(kite);
    const stored0 = sample(text0, 'kite_ingest_requests_total', { team: 'acme', source: 'pay', outcome: 'stored' }) ?? 0;
    const hook = stripeWebhook(STRIPE_SECRET, { id: 'evt_metrics_1' });
    expectStatus(await kite.api.as(undefined).post('/hooks/acme/pay', hook.body, hook.headers), 200);
    const again = stripeWebhook(STRIPE_SECRET, { id: 'evt_metrics_1' });
    expectStatus(await kite.api.as(undefined).post('/hooks/acme/pay', again.body, again.headers), 200);
    const bad = stripeWebhook('whsec_wrong', {});
    expect((await kite.api.as(undefined).post('/hooks/acme/pay', bad.body, bad.headers)).status).toBe(401);

    const text = await metricsOf(kite);
    expect(sample(text, 'kite_ingest_requests_total', { team: 'acme', source: 'pay', outcome: 'stored' })).toBe(stored0 + 1);
    expect(sample(text, 'kite_ingest_requests_total', { team: 'acme', source: 'pay', outcome: 'duplicate' })).toBe(1);
    expect(sample(text, 'kite_ingest_requests_total', { team: 'acme', source: 'pay', outcome: 'invalid_signature' })).toBe(1);
    expect(sample(text, 'kite_ingest_duration_seconds_bucket', { team: 'acme', source: 'pay', outcome: 'stored', le: '+Inf' })).toBe(stored0 + 1);
    expect(sample(text, 'kite_ingest_duration_seconds_count', { team: 'acme', source: 'pay', outcome: 'stored' })).toBe(stored0 + 1);
  });

  it('ops - kite_listeners counts an open listener and drops when it closes', async () => {
    const before = sample(await metricsOf(kite), 'kite_listeners');
    expect(before).toBe(0);
    const listener = await listen(kite.url, 'acme', team.agentKey);
    try {
      await waitForMetrics(kite, (t) => sample(t, 'kite_listeners') === 1, 'kite_listeners 1');
    } finally {
      listener.close();
    }
    await listener.waitForClose();
    await waitForMetrics(kite, (t) => sample(t, 'kite_listeners') === 0, 'kite_listeners 0');
  });

  it('ops - /metrics never shows a source secret, the admin token or a team key', async () => {
    // Make sure requests carrying these secrets have been counted first.
    const hook = stripeWebhook(STRIPE_SECRET, {});
    expectStatus(await kite.api.as(undefined).post('/hooks/acme/pay', hook.body, hook.headers), 200);
    expectStatus(await kite.api.get('/v1/teams/acme/sources'), 200);
    expectStatus(await kite.api.as(team.agentKey).get('/v1/teams/acme/events'), 200);
    expect((await kite.api.as(undefined).get(`/v1/teams/acme/events?token=${ADMIN_TOKEN}`)).status).toBe(401);
    const text = await metricsOf(kite);
    expect(text).toContain('kite_ingest_requests_total');
    for (const secret of [STRIPE_SECRET, ADMIN_TOKEN, team.adminKey, team.agentKey]) expect(text).not.toContain(secret);
  });

  it('ops - GET /v1/instance answers {"instanceId","publicUrl","version"} without auth', async () => {
    const answer = await kite.api.as(undefined).get('/v1/instance');
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ instanceId: 'ops-test-1', publicUrl: 'http://kite.test', version: PACKAGE_VERSION });
  });

  for (const path of ['/nope', '/v1/nope', '/v1/teams/acme/nothing', '/hooks/acme', '/v1/teams/acme/keys/x/y']) {
    it(`ops - an unknown path (GET ${path}) answers 404 with a JSON error`, async () => {
      expectError(await kite.api.get(path), 404);
    });
  }

  const wrongMethods: [string, string][] = [
    ['DELETE', '/healthz'],
    ['POST', '/readyz'],
    ['POST', '/metrics'],
    ['POST', '/v1/instance'],
    ['PUT', '/v1/teams'],
    ['DELETE', '/v1/teams/acme/events'],
    ['PATCH', '/v1/teams/acme/keys'],
    ['GET', '/hooks/acme/pay'],
    ['GET', '/v1/teams/acme/keys/00000000-0000-0000-0000-000000000000'],
    ['POST', '/v1/teams/acme/listen'],
  ];
  for (const [method, path] of wrongMethods) {
    it(`ops - ${method} ${path} (a known path, wrong method) answers 405 with a JSON error`, async () => {
      const [before] = await db.query('SELECT (SELECT count(*)::int FROM events) AS events, (SELECT count(*)::int FROM teams) AS teams');
      expectError(await kite.api.request(method, path, method === 'GET' || method === 'DELETE' ? undefined : {}), 405);
      const [after] = await db.query('SELECT (SELECT count(*)::int FROM events) AS events, (SELECT count(*)::int FROM teams) AS teams');
      expect(after).toEqual(before);
    });
  }
});

describe('ops - the listen path without an upgrade', () => {
  it('ops - a plain GET of the listen path answers 426 upgrade_required', async () => {
    const answer = await kite.api.get('/v1/teams/acme/listen');
    expect(answer.status).toBe(426);
    expect(answer.body.error.code).toBe('upgrade_required');
  });
});

describe('ops - configuration', () => {
  // Real PEM files: the configuration checks what the TLS and CA files hold.
  const tls = makeTestTls();
  afterAll(() => rmSync(tls.dir, { recursive: true, force: true }));

  it('config - an empty environment takes the contract\'s defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      instanceId: 'kite-local',
      publicUrl: 'http://localhost:8787',
      host: '127.0.0.1',
      port: 8787,
      databaseUrl: undefined,
      dataDir: './.kite',
      adminToken: undefined,
      tls: undefined,
      federationCaFile: undefined,
      logLevel: 'info',
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('config - set variables are read into the typed config', () => {
    const config = loadConfig({
      KITE_INSTANCE_ID: 'node-b',
      KITE_PUBLIC_URL: 'https://kite.example.com',
      KITE_HOST: '0.0.0.0',
      KITE_PORT: '9000',
      DATABASE_URL: 'postgresql://u@db:5432/kite',
      KITE_DATA_DIR: '/var/lib/kite',
      KITE_ADMIN_TOKEN: 'a-long-enough-admin-token',
      KITE_TLS_CERT_FILE: tls.certFile,
      KITE_TLS_KEY_FILE: tls.keyFile,
      KITE_FEDERATION_CA_FILE: tls.caFile,
      KITE_LOG_LEVEL: 'debug',
    });
    expect(config).toMatchObject({
      instanceId: 'node-b',
      publicUrl: 'https://kite.example.com',
      host: '0.0.0.0',
      port: 9000,
      databaseUrl: 'postgresql://u@db:5432/kite',
      dataDir: '/var/lib/kite',
      adminToken: 'a-long-enough-admin-token',
      tls: { certFile: tls.certFile, keyFile: tls.keyFile },
      federationCaFile: tls.caFile,
      logLevel: 'debug',
    });
  });

  const bad: [string, Record<string, string>, string][] = [
    ['KITE_PORT=abc', { KITE_PORT: 'abc' }, 'KITE_PORT'],
    ['KITE_PORT=70000', { KITE_PORT: '70000' }, 'KITE_PORT'],
    ['KITE_PORT=80.5', { KITE_PORT: '80.5' }, 'KITE_PORT'],
    ['KITE_PORT=1e4', { KITE_PORT: '1e4' }, 'KITE_PORT'],
    ['KITE_PORT=0x10', { KITE_PORT: '0x10' }, 'KITE_PORT'],
    ['KITE_PORT with a leading space', { KITE_PORT: ' 80' }, 'KITE_PORT'],
    ['KITE_MAX_BODY_BYTES=1e6', { KITE_MAX_BODY_BYTES: '1e6' }, 'KITE_MAX_BODY_BYTES'],
    ['KITE_MAX_BODY_BYTES=100', { KITE_MAX_BODY_BYTES: '100' }, 'KITE_MAX_BODY_BYTES'],
    ['KITE_PUBLIC_URL with a trailing slash', { KITE_PUBLIC_URL: 'http://kite.example.com/' }, 'KITE_PUBLIC_URL'],
    ['KITE_PUBLIC_URL=ftp://…', { KITE_PUBLIC_URL: 'ftp://kite.example.com' }, 'KITE_PUBLIC_URL'],
    ['KITE_PUBLIC_URL that is not a URL', { KITE_PUBLIC_URL: 'kite.example.com' }, 'KITE_PUBLIC_URL'],
    ['KITE_INSTANCE_ID=Bad', { KITE_INSTANCE_ID: 'Bad' }, 'KITE_INSTANCE_ID'],
    ['only KITE_TLS_CERT_FILE', { KITE_TLS_CERT_FILE: '/tls/cert.pem' }, 'KITE_TLS_'],
    ['only KITE_TLS_KEY_FILE', { KITE_TLS_KEY_FILE: '/tls/key.pem' }, 'KITE_TLS_'],
    ['KITE_LOG_LEVEL=loud', { KITE_LOG_LEVEL: 'loud' }, 'KITE_LOG_LEVEL'],
    ['DATABASE_URL=mysql://x', { DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
  ];
  for (const [what, env, variable] of bad) {
    it(`config - ${what} is refused with one line naming ${variable.replace(/_$/, '_*_FILE')}`, () => {
      let error: unknown;
      try {
        loadConfig(env);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as Error).message;
      expect(message).not.toMatch(/[\r\n]/);
      expect(message).toContain(variable);
      expect(message.length).toBeLessThan(300);
      // It names the bad variable, not some other one.
      const named = message.match(/\b(KITE_[A-Z_]+|DATABASE_URL)\b/g) ?? [];
      expect(named.length).toBeGreaterThan(0);
      expect(named.every((n) => n.startsWith(variable) || (variable === 'KITE_TLS_' && n.startsWith('KITE_TLS_')))).toBe(true);
    });
  }

  it('config - a TLS pair names the missing variable', () => {
    expect(() => loadConfig({ KITE_TLS_CERT_FILE: '/tls/cert.pem' })).toThrow(/KITE_TLS_KEY_FILE/);
    expect(() => loadConfig({ KITE_TLS_KEY_FILE: '/tls/key.pem' })).toThrow(/KITE_TLS_CERT_FILE/);
  });

  // The start-up line goes to stderr and to log collectors: a rejected credential must not be in it.
  const secretValues: [string, Record<string, string>, string][] = [
    ['a too-short KITE_ADMIN_TOKEN', { KITE_ADMIN_TOKEN: 'short-s3cret' }, 'short-s3cret'],
    ['a non-postgres DATABASE_URL with a password', { DATABASE_URL: 'mysql://kite:hunter2-pw@db/kite' }, 'hunter2-pw'],
  ];
  for (const [what, env, secret] of secretValues) {
    it(`config - ${what} is refused without echoing the secret in the error line`, () => {
      let message = '';
      try {
        loadConfig(env);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toContain(Object.keys(env)[0]);
      expect(message).not.toContain(secret);
    });
  }

  it('config - a TLS or CA file that holds no certificate or key, or a key of another certificate, names its variable', () => {
    const text = new URL('../../package.json', import.meta.url).pathname;
    const wrong = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      return 'accepted';
    };
    expect(wrong({ KITE_TLS_CERT_FILE: text, KITE_TLS_KEY_FILE: tls.keyFile })).toMatch(/^Invalid configuration: KITE_TLS_CERT_FILE: holds no PEM certificate/);
    expect(wrong({ KITE_TLS_CERT_FILE: tls.certFile, KITE_TLS_KEY_FILE: text })).toMatch(/^Invalid configuration: KITE_TLS_KEY_FILE: holds no unencrypted PEM private key/);
    // The CA's key is a valid key, of another certificate; and the files swapped.
    expect(wrong({ KITE_TLS_CERT_FILE: tls.certFile, KITE_TLS_KEY_FILE: `${tls.dir}/ca.key` })).toMatch(/^Invalid configuration: KITE_TLS_KEY_FILE: is not the key of the certificate in KITE_TLS_CERT_FILE$/);
    expect(wrong({ KITE_TLS_CERT_FILE: tls.keyFile, KITE_TLS_KEY_FILE: tls.certFile })).toMatch(/^Invalid configuration: KITE_TLS_CERT_FILE: /);
    // A key of another type (RSA next to the EC certificate), which a TLS context takes silently.
    const rsaKey = `${tls.dir}/rsa.key`;
    writeFileSync(rsaKey, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect(wrong({ KITE_TLS_CERT_FILE: tls.certFile, KITE_TLS_KEY_FILE: rsaKey })).toMatch(/^Invalid configuration: KITE_TLS_KEY_FILE: is not the key of the certificate/);
    expect(wrong({ KITE_FEDERATION_CA_FILE: text })).toMatch(/^Invalid configuration: KITE_FEDERATION_CA_FILE: holds no PEM certificate/);
    expect(wrong({ KITE_TLS_CERT_FILE: tls.certFile, KITE_TLS_KEY_FILE: tls.keyFile, KITE_FEDERATION_CA_FILE: tls.caFile })).toBe('accepted');
  });

  it('config - a KITE_PUBLIC_URL with a query, a fragment or credentials is refused, without echoing the credentials', () => {
    for (const url of ['https://kite.example.com/base?q=1', 'https://kite.example.com/base#top', 'https://kite.example.com?', 'https://user:s3cret-pw@kite.example.com']) {
      let message = '';
      try {
        loadConfig({ KITE_PUBLIC_URL: url });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, url).toMatch(/^Invalid configuration: KITE_PUBLIC_URL: must be a plain base URL/);
      expect(message).not.toContain('s3cret-pw');
    }
    expect(loadConfig({ KITE_PUBLIC_URL: 'https://kite.example.com/base' }).publicUrl).toBe('https://kite.example.com/base');
  });

  it('config - a TLS or CA file that cannot be read names its variable', () => {
    const readable = new URL('../../package.json', import.meta.url).pathname;
    expect(() => loadConfig({ KITE_TLS_CERT_FILE: '/nonexistent/cert.pem', KITE_TLS_KEY_FILE: readable })).toThrow(/^Invalid configuration: KITE_TLS_CERT_FILE: cannot read/);
    expect(() => loadConfig({ KITE_TLS_CERT_FILE: readable, KITE_TLS_KEY_FILE: '/nonexistent/key.pem' })).toThrow(/KITE_TLS_KEY_FILE/);
    expect(() => loadConfig({ KITE_FEDERATION_CA_FILE: '/nonexistent/ca.pem' })).toThrow(/KITE_FEDERATION_CA_FILE/);
  });
});

describe('ops - the listen port', () => {
  it('ops - a second node on a port already in use fails to start, naming KITE_HOST and KITE_PORT', async () => {
    await expect(startTestKite(db.url, { KITE_PORT: String(kite.port) })).rejects.toThrow(/KITE_PORT/);
  });
});
