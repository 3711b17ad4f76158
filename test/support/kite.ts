/**
 * Starts a real Kite node in this process on a loopback port, and a small JSON client for its API.
 */
import { readFileSync } from 'node:fs';
import { Agent, fetch as undiciFetch } from 'undici';
import { loadConfig } from '../../src/config.js';
import { startKite, type RunningKite } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export interface TestKite extends RunningKite {
  readonly api: KiteApi;
}

export async function startTestKite(databaseUrl: string, env: Record<string, string> = {}): Promise<TestKite> {
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    KITE_PORT: '0',
    KITE_ADMIN_TOKEN: ADMIN_TOKEN,
    KITE_PUBLIC_URL: 'http://kite.test',
    KITE_LOG_LEVEL: 'silent',
    ...env,
  });
  const kite = await startKite(config, { logger: createLogger(process.env['KITE_TEST_LOG_LEVEL'] ?? 'silent') });
  const ca = config.federationCaFile && config.tls ? readFileSync(config.federationCaFile, 'utf8') : undefined;
  return Object.assign(kite, { api: new KiteApi(kite.url, ADMIN_TOKEN, ca) });
}

export interface ApiAnswer<T = any> {
  readonly status: number;
  readonly body: T;
  readonly headers: { get(name: string): string | null };
}

export class KiteApi {
  private readonly dispatcher: Agent | undefined;

  constructor(
    readonly url: string,
    readonly token: string | undefined,
    /** PEM of a CA to trust, for an instance serving HTTPS with a test certificate. */
    readonly ca?: string,
  ) {
    this.dispatcher = ca ? new Agent({ connect: { ca } }) : undefined;
  }

  as(token: string | undefined): KiteApi {
    return new KiteApi(this.url, token, this.ca);
  }

  async request<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiAnswer<T>> {
    const init: RequestInit = { method, headers: { ...headers } };
    if (this.token) (init.headers as Record<string, string>)['authorization'] = `Bearer ${this.token}`;
    if (body !== undefined) {
      init.body = typeof body === 'string' || Buffer.isBuffer(body) ? (body as string) : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const response = this.dispatcher
      ? await undiciFetch(this.url + path, { ...(init as object), dispatcher: this.dispatcher })
      : await fetch(this.url + path, init);
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: keep the text */
    }
    return { status: response.status, body: parsed as T, headers: response.headers };
  }

  get<T = any>(path: string) {
    return this.request<T>('GET', path);
  }
  post<T = any>(path: string, body?: unknown, headers?: Record<string, string>) {
    return this.request<T>('POST', path, body, headers);
  }
  delete<T = any>(path: string) {
    return this.request<T>('DELETE', path);
  }

  /** Creates a team, an admin key and an agent key; returns the keys. */
  async createTeam(slug: string): Promise<{ adminKey: string; agentKey: string; agentKeyId: string }> {
    expectStatus(await this.post('/v1/teams', { slug }), 201);
    const admin = expectStatus(await this.post(`/v1/teams/${slug}/keys`, { name: 'ops', role: 'admin' }), 201);
    const agent = expectStatus(await this.post(`/v1/teams/${slug}/keys`, { name: 'agent-1', role: 'agent' }), 201);
    return { adminKey: admin.body.key, agentKey: agent.body.key, agentKeyId: agent.body.id };
  }

  async createSource(team: string, name: string, provider: string, secret: string): Promise<string> {
    return expectStatus(await this.post(`/v1/teams/${team}/sources`, { name, provider, secret }), 201).body.url;
  }
}

export function expectStatus<T>(answer: ApiAnswer<T>, status: number): ApiAnswer<T> {
  if (answer.status !== status) {
    throw new Error(`expected HTTP ${status}, got ${answer.status}: ${JSON.stringify(answer.body)}`);
  }
  return answer;
}
