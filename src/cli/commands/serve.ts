/**
 * `kite serve`: run the server until SIGTERM/SIGINT. The first signal closes Kite gracefully
 * (listeners, in-flight ingest, the database) and exits 0; a second signal exits 1 at once, for
 * an operator whose shutdown is stuck. A signal during startup is honoured once the start is
 * done, so an embedded Postgres is never left running. The server logs its own startup (and
 * prints the banner with the admin token); this file prints nothing.
 *
 * The config and `src/main.ts` are imported lazily so `kite --help` never loads the server.
 */
import type { RunningKite } from '../../main.js';
import { CliError } from '../args.js';
import type { Command } from '../command.js';
import { takeOverShutdownSignals } from '../signals.js';

export const SERVER_ENV = [
  ['KITE_INSTANCE_ID', "this instance's ID (default kite-local)"],
  ['KITE_PUBLIC_URL', 'URL peers and events name this instance by (default http://localhost:8787)'],
  ['KITE_HOST / KITE_PORT', 'listen address (default 127.0.0.1 / 8787)'],
  ['DATABASE_URL', 'Postgres to use; when absent an embedded Postgres runs under KITE_DATA_DIR'],
  ['KITE_DATA_DIR', 'data directory (default ./.kite)'],
  ['KITE_ADMIN_TOKEN', 'admin bearer token (default: generated on first start, saved in the data dir)'],
  ['KITE_TLS_CERT_FILE / KITE_TLS_KEY_FILE', 'serve HTTPS and WSS only, with this certificate and key'],
  ['KITE_FEDERATION_CA_FILE', 'extra CA certificates (PEM) trusted for outbound federation'],
  ['KITE_LOG_LEVEL', 'fatal|error|warn|info|debug|trace|silent (default info)'],
  ['KITE_MAX_BODY_BYTES', 'largest accepted webhook body (default 1048576)'],
] as const;

export const serve: Command = {
  spec: {
    command: 'serve',
    summary: 'run the Kite server: HTTP API, webhook ingest, WebSocket listeners',
    usage: 'kite serve',
    details: [
      'Configuration comes from the environment only. On first start Kite generates an admin token,',
      'stores it in <KITE_DATA_DIR>/admin-token and prints it once with a sample curl.',
      'SIGTERM or SIGINT shuts down gracefully (exit 0); a second signal more than 2 s later exits at once (exit 1).',
    ],
    flags: {},
    env: SERVER_ENV,
    examples: ['KITE_PORT=9000 DATABASE_URL=postgres://localhost/kite kite serve'],
  },
  async run() {
    const { loadConfig } = await import('../../config.js');
    const config = loadConfig();
    const { startKite } = await import('../../main.js');
    return new Promise<number>((resolve, reject) => {
      let running: RunningKite | undefined;
      let signalled = false;
      let firstSignalAt = 0;
      const shutdown = (kite: RunningKite) => {
        kite.close().then(
          () => resolve(0),
          (err: unknown) => reject(new CliError(`shutdown failed: ${err instanceof Error ? err.message : String(err)}`)),
        );
      };
      takeOverShutdownSignals(() => {
        if (signalled) {
          // Under `npm start`, one Ctrl-C reaches us twice (from the terminal and from npm): only a
          // second signal well after the first means "stop now" (the embedded Postgres is then
          // left running; the next start stops it).
          if (Date.now() - firstSignalAt > 2000) process.exit(1);
          return;
        }
        signalled = true;
        firstSignalAt = Date.now();
        if (running) shutdown(running);
      });
      startKite(config, { banner: true }).then(
        (kite) => {
          running = kite;
          if (signalled) shutdown(kite);
        },
        (err: unknown) => reject(err),
      );
    });
  },
};
