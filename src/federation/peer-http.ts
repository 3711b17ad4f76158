/**
 * One keep-alive HTTPS connection pool per peer (undici), so a slow peer only ever holds its own
 * connections. TLS only (the peers API refuses http://), trusting the system CAs plus
 * KITE_FEDERATION_CA_FILE; redirects are never followed (undici's request does not follow them).
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Pool } from 'undici';

export interface PeerResponse {
  readonly status: number;
  readonly retryAfter: string | undefined;
}

/** The trusted CAs for a KITE_FEDERATION_CA_FILE, read once for every peer. */
const trustedCas = new Map<string, string[]>();
function trusted(caFile: string): string[] {
  let cas = trustedCas.get(caFile);
  if (!cas) trustedCas.set(caFile, (cas = [...rootCertificates, readFileSync(caFile, 'utf8')]));
  return cas;
}

export class PeerHttp {
  /** Created on the first request: an idle peer costs no pool (about 20 KB each). */
  private pool: Pool | undefined;
  private readonly origin: string;
  private readonly basePath: string;

  constructor(
    readonly url: string,
    readonly timeoutMs: number,
    private readonly caFile: string | undefined,
  ) {
    const parsed = new URL(url);
    this.origin = parsed.origin;
    this.basePath = parsed.pathname.replace(/\/+$/, '');
  }

  private connections(): Pool {
    this.pool ??= new Pool(this.origin, {
      connections: 4,
      keepAliveTimeout: 30_000,
      // undici ignores the abort signal until a connection exists: the connect (TCP and TLS
      // handshake) needs the request's timeout of its own.
      connect: { ca: this.caFile ? trusted(this.caFile) : undefined, rejectUnauthorized: true, timeout: this.timeoutMs },
    });
    return this.pool;
  }

  /** POSTs and reads the answer; throws on connection errors, timeouts and aborts. */
  async post(path: string, headers: Record<string, string>, body: string, signal: AbortSignal, timeoutMs: number): Promise<PeerResponse> {
    const response = await this.connections().request({
      method: 'POST',
      path: this.basePath + path,
      headers,
      body,
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    // Always read the answer to the end, or the connection cannot be reused.
    await response.body.text();
    const retryAfter = response.headers['retry-after'];
    return { status: response.statusCode, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter };
  }

  async close(): Promise<void> {
    await this.pool?.close().catch(() => {});
  }
}
