/**
 * The framework-free shape of a request and a response. Route handlers see only these, so they
 * can be called in tests without a server and only `src/http/` knows uWebSockets.js.
 */

export interface KiteRequest {
  readonly method: string;
  /** The path without the query string. */
  readonly path: string;
  /** Route parameters by name, URL-decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** Header names lower-cased. */
  readonly headers: Readonly<Record<string, string>>;
  /** The raw body (empty for GET/DELETE). */
  readonly body: Buffer;
  readonly receivedAt: Date;
}

export interface KiteResponse {
  readonly status: number;
  /** An object is sent as JSON; a string or Buffer as is (with its content-type header). */
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export type RouteHandler = (request: KiteRequest) => Promise<KiteResponse> | KiteResponse;

export interface Route {
  readonly method: 'get' | 'post' | 'patch' | 'put' | 'del';
  /** uWS pattern, e.g. `/v1/teams/:team/keys`. */
  readonly pattern: string;
  readonly handler: RouteHandler;
  /** Override of the body limit (bytes); defaults to KITE_MAX_BODY_BYTES. */
  readonly maxBodyBytes?: number;
}

export function json(status: number, body: unknown, headers?: Record<string, string>): KiteResponse {
  return headers ? { status, body, headers } : { status, body };
}
