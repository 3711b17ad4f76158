/**
 * Contract §5 "Outcomes the sender acts on": what the HTTP status of a peer's answer means. The
 * one place a status is read: the outcome the peer machine acts on (peer-delivery.ts `classify`,
 * and the split or dead letter of refused events there) and the `outcome` label of
 * `kite_peer_deliveries_total` (observability/federation-metrics.ts) both derive from it.
 */
export type AnswerKind =
  /** 2xx. */
  | 'delivered'
  /** 429: wait for its Retry-After. */
  | 'rate-limited'
  /** 401/403/404: the peer rejects our requests (the peer is dead-lettered). */
  | 'rejected'
  /**
   * Another 4xx (413 included): the peer refuses these events, not us. A batch is split (413) or
   * re-sent one event at a time; a single event is dead-lettered alone.
   */
  | 'refused'
  /** No answer (null), 3xx (a redirect is never followed), 408, 5xx: sent again later. */
  | 'retryable';

export function answerKind(status: number | null): AnswerKind {
  if (status === null) return 'retryable';
  if (status >= 200 && status < 300) return 'delivered';
  if (status === 429) return 'rate-limited';
  if (status === 401 || status === 403 || status === 404) return 'rejected';
  if (status >= 400 && status < 500 && status !== 408) return 'refused';
  return 'retryable';
}
