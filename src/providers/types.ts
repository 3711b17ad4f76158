/**
 * What a webhook provider does: check a request's signature on its raw bytes and turn it into the
 * CloudEvents Kite stores. Providers are pure (no I/O): the ingest route hands them the request
 * and the source's secret, and stores what they return.
 */

export interface IncomingWebhook {
  /** Header names lower-cased; a repeated header is joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  /** The raw body, exactly as received: signatures are computed over these bytes. */
  readonly body: Buffer;
  readonly receivedAt: Date;
}

export interface SourceContext {
  readonly team: string;
  readonly sourceName: string;
  /** `<KITE_PUBLIC_URL>/hooks/<team>/<source>`: the CloudEvent `source` for non-CloudEvents providers. */
  readonly sourceUrl: string;
  readonly secret: string;
}

/** One CloudEvent ready to store. `json` is its structured-mode JSON text, stored verbatim. */
export interface NormalizedEvent {
  readonly id: string;
  readonly source: string;
  readonly type: string;
  /** ISO 8601 UTC, e.g. 2026-11-27T19:36:43.000Z */
  readonly time: string;
  readonly json: string;
  /**
   * The federation provenance attributes as received (kept only where `kite*` extensions are, on
   * the federation receive route), so the receiver checks them without parsing `json` again.
   */
  readonly provenance?: Readonly<Record<'kitefedorigin' | 'kitefedchain' | 'kitefedhops', unknown>>;
}

export interface ParsedWebhook {
  readonly events: NormalizedEvent[];
  /** True for a CloudEvents batch: the answer is then `{"items": [...]}`. */
  readonly batch: boolean;
}

export interface Provider {
  readonly name: string;
  /** A reason the secret is unusable for this provider (e.g. `standard` needs `whsec_…`), or null. */
  validateSecret(secret: string): string | null;
  /**
   * Verify, then parse. Throws KiteError `invalid_signature` (401) first for a bad, missing or
   * expired signature, then `invalid_body` / `invalid_json` / `reserved_type` (400).
   */
  parse(request: IncomingWebhook, source: SourceContext): ParsedWebhook;
}
