/**
 * Turns a uWS request into a KiteRequest: copies what uWS only lends during the synchronous part
 * of the handler (headers, URL, params), then streams the body with a size limit. A body over the
 * limit is refused with 413 as soon as it is known to be too large (from Content-Length, or
 * while streaming), never buffered whole.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { KiteError } from '../errors.js';
import type { KiteRequest } from './types.js';

export interface RequestHead {
  readonly method: string;
  readonly path: string;
  readonly params: Record<string, string>;
  readonly query: URLSearchParams;
  readonly headers: Record<string, string>;
  readonly receivedAt: Date;
}

/** Synchronous: must run before the handler's first await. */
export function readHead(req: HttpRequest, paramNames: readonly string[]): RequestHead {
  const headers: Record<string, string> = {};
  req.forEach((key, value) => {
    headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
  });
  const params: Record<string, string> = {};
  paramNames.forEach((name, index) => {
    params[name] = safeDecode(req.getParameter(index));
  });
  return {
    method: req.getMethod().toUpperCase(),
    path: req.getUrl(),
    params,
    query: new URLSearchParams(req.getQuery() ?? ''),
    headers,
    receivedAt: new Date(),
  };
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

export interface BodyReader {
  readonly body: Promise<Buffer>;
}

/**
 * Streams the body. Rejects with KiteError('payload_too_large') once the limit is passed; the
 * caller answers 413 and closes the connection (the rest of the body is never read).
 */
/** `abort.cancel` is set while a body is being read: call it when the client goes away. */
export function readBody(res: HttpResponse, head: RequestHead, maxBytes: number, abort?: { cancel?: () => void }): Promise<Buffer> {
  const declared = head.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    return Promise.reject(new KiteError('payload_too_large', `The body is larger than the limit of ${maxBytes} bytes.`));
  }
  if (head.method === 'GET' || head.method === 'DELETE' || head.method === 'HEAD') {
    if (declared === undefined || declared === '0') return Promise.resolve(Buffer.alloc(0));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    if (abort) {
      abort.cancel = () => {
        if (done) return;
        done = true;
        reject(new KiteError('invalid_input', 'The client went away before the body was complete.'));
      };
    }
    res.onData((chunk, isLast) => {
      if (done) return;
      size += chunk.byteLength;
      if (size > maxBytes) {
        done = true;
        reject(new KiteError('payload_too_large', `The body is larger than the limit of ${maxBytes} bytes.`));
        return;
      }
      // uWS reuses the chunk's memory after this callback returns: copy it.
      chunks.push(Buffer.from(new Uint8Array(chunk).slice()));
      if (isLast) {
        done = true;
        resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
      }
    });
  });
}

export function toKiteRequest(head: RequestHead, body: Buffer): KiteRequest {
  return { ...head, body };
}
