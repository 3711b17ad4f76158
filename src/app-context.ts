/**
 * Everything route handlers may use, built once by `src/main.ts` (the composition root).
 */
import type { Authenticator } from './auth/principal.js';
import type { KeyStore } from './auth/key-store.js';
import type { Config } from './config.js';
import type { Pool } from './db/pool.js';
import type { PostgresEventReader } from './events/event-reader.js';
import type { EventAppender } from './ingest/event-appender.js';
import type { BroadcastHub } from './listen/broadcast-hub.js';
import type { Logger } from './observability/logger.js';
import type { Metrics } from './observability/metrics.js';
import type { SourceRegistry } from './sources/source-registry.js';
import type { TeamDirectory } from './teams/team-directory.js';

export interface AppContext {
  readonly config: Config;
  readonly version: string;
  readonly pool: Pool;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly auth: Authenticator;
  readonly teams: TeamDirectory;
  readonly keys: KeyStore;
  readonly sources: SourceRegistry;
  readonly appender: EventAppender;
  readonly reader: PostgresEventReader;
  readonly hub: BroadcastHub;
  /** True once migrations ran and while the database answers (for /readyz). */
  readonly isReady: () => Promise<boolean>;
}
