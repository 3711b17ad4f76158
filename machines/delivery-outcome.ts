/**
 * What one delivery attempt to a peer came to, classified once, where the HTTP call happens
 * (src/federation), so the peer machine's guards read only the tag.
 *
 * The same union answers a probe (a signed empty batch): a 2xx probe is `delivered` with
 * `count: 0`.
 */
export type DeliveryOutcome =
  /**
   * ≥1 event accepted (2xx), or events dead-lettered alone (other 4xx) and delivery may go on.
   * `pacedMs`: our own token bucket sized the batch (it held fewer tokens than events were waiting);
   * the next token comes in `pacedMs`. A rate-limited peer stays rate-limited through such sends
   * (one refill, one send), instead of going healthy and back at every request.
   */
  | { tag: 'delivered'; count: number; pacedMs?: number }
  /** Nothing pending for this peer: no request was sent. */
  | { tag: 'idle' }
  /** Connection error, timeout, 408, 5xx, 3xx (a redirect is never followed). */
  | { tag: 'retryable'; error: string; statusCode?: number }
  /** 429 (Retry-After, 1 s when absent), or our own token bucket for the peer is empty. */
  | { tag: 'rate-limited'; retryAfterMs: number; error?: string }
  /** 401/403/404: the peer rejects us. */
  | { tag: 'rejected'; error: string; statusCode: number };

export type DeliveryOutcomeTag = DeliveryOutcome['tag'];

/** The wait a 429 without `Retry-After` asks for (contract §5). */
export const DEFAULT_RETRY_AFTER_MS = 1_000;
