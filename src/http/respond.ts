/**
 * Writes KiteResponses and errors to uWS responses. The one place errors become
 * `{"error": {"code", "message"}}` bodies.
 */
import { STATUS_CODES } from 'node:http';
import type { HttpResponse } from 'uWebSockets.js';
import { coerceError, KiteError } from '../errors.js';
import type { KiteResponse } from './types.js';

const statusLines = new Map<number, string>();
export function statusLine(status: number): string {
  let line = statusLines.get(status);
  if (!line) {
    line = `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
    statusLines.set(status, line);
  }
  return line;
}

export function errorResponse(err: unknown): KiteResponse {
  const error: KiteError = coerceError(err);
  return { status: error.status, body: { error: { code: error.code, message: error.message } }, headers: error.headers };
}

/** Must be called inside res.cork() (or the synchronous part of a handler). */
export function writeResponse(res: HttpResponse, response: KiteResponse, closeConnection = false): void {
  res.writeStatus(statusLine(response.status));
  let hasContentType = false;
  if (response.headers) {
    for (const [name, value] of Object.entries(response.headers)) {
      if (name.toLowerCase() === 'content-type') hasContentType = true;
      res.writeHeader(name, value);
    }
  }
  const body = response.body;
  if (response.status === 204) {
    // No Content-Length on a 204 (RFC 9110), which only the argument-less call gives:
    // `endWithoutBody(undefined, …)` sends `Content-Length: 9223372036854775808` and drops the
    // connection (test/http/no-content.test.ts). Closing needs a length: 0 then.
    if (closeConnection) res.endWithoutBody(0, true);
    else res.endWithoutBody();
    return;
  }
  if (body === undefined) {
    res.end('', closeConnection);
    return;
  }
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    if (!hasContentType) res.writeHeader('content-type', 'text/plain; charset=utf-8');
    res.end(body, closeConnection);
    return;
  }
  if (!hasContentType) res.writeHeader('content-type', 'application/json');
  res.end(JSON.stringify(body), closeConnection);
}
