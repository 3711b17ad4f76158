/**
 * One keep-alive HTTPS connection pool per peer (undici), so a slow peer only ever holds its own
 * connections. TLS only (the peers API refuses http://), trusting the system CAs plus
 * KITE_FEDERATION_CA_FILE; redirects are never followed (undici's request does not follow them).
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { Pool } from 'undici';

export interface PeerResponse {
  readonly status: number;
  readonly retryAfter: string | undefined;
}

/**
 * The TLS context trusting the system CAs plus a KITE_FEDERATION_CA_FILE, built once for every
 * peer and connection. Given as `ca`, the ~140 certificates were parsed again for each new
 * connection: with 100 peers that was 44 % of the node's CPU (bench federation --profile).
 */
const trustedContexts = new Map<string, SecureContext>();
function trusted(caFile: string): SecureContext {
  let context = trustedContexts.get(caFile);
  if (!context) trustedContexts.set(caFile, (context = createSecureContext({ ca: [...rootCertificates, readFileSync(caFile, 'utf8')] })));
  return context;
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
      connect: { ...(this.caFile ? { secureContext: trusted(this.caFile) } : {}), rejectUnauthorized: true, timeout: this.timeoutMs },
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
