/**
 * Command-line flags shared by every scenario (node:util parseArgs). Lists such as
 * `--connections 1,64` choose the load levels; `--quick` picks one short level per scenario.
 */
import { parseArgs } from 'node:util';

export interface BenchFlags {
  /** Measured seconds per level (warm-up not included). */
  readonly duration: number;
  readonly connections: readonly number[] | undefined;
  readonly listeners: readonly number[] | undefined;
  /** Events per second the fan-out publisher sends. */
  readonly rate: number | undefined;
  readonly quick: boolean;
  /** federation: peers of one team (each event goes to one of them). */
  readonly peers: readonly number[] | undefined;
  /** federation: outbound batch caps (the peer's rateLimit burst) for the one-peer throughput sweep. */
  readonly batch: readonly number[] | undefined;
  /** retry: seconds the peer is down. */
  readonly down: number | undefined;
  /** backlog: pending deliveries to build. */
  readonly backlog: number | undefined;
  /** Runs of every level; the summary quotes the median run. */
  readonly repeat: number;
  /** Run the Kite server under `node --cpu-prof`, profile written to bench/results/. */
  readonly profile: boolean;
  readonly help: boolean;
}

export const FLAGS_HELP = `Flags:
  --duration <s>        measured seconds per level (default 10; --quick: 5)
  --connections <list>  ingest: HTTP connections, e.g. 1,16,64,256 (default; --quick: 64)
  --listeners <list>    fanout: WebSocket listeners, e.g. 1,100,1000 (default; --quick: 1000)
  --rate <n>            fanout: webhooks per second the publisher sends (default 500);
                        federation: offered events/s of the throughput stages (default 10000)
  --peers <list>        federation: peers, e.g. 1,10,100,1000 (default; --quick: 1)
  --batch <list>        federation: outbound batch caps for one peer, e.g. 1,10,100 (default; --quick: 100)
  --down <s>            retry: seconds the peer is down (default 60; --quick: 10)
  --backlog <n>         backlog: pending deliveries to drain (default 1000000; --quick: 100000, drain capped at 30 s)
  --repeat <n>          repeat every level n times and quote the median (default 1)
  --quick               one short level per scenario
  --profile             run Kite under node --cpu-prof (written to bench/results/*.cpuprofile)
  --help`;

function positiveNumber(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number (got ${JSON.stringify(raw)})`);
  return value;
}

function numberList(name: string, raw: string | undefined): number[] | undefined {
  if (raw === undefined) return undefined;
  const values = raw.split(',').map((part) => Math.floor(positiveNumber(name, part.trim(), 0)));
  if (values.length === 0) throw new Error(`--${name} needs at least one number`);
  return values;
}

/** Parses argv (without the scenario name). Unknown flags are an error, so typos do not pass silently. */
export function parseFlags(argv: readonly string[]): BenchFlags {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      duration: { type: 'string' },
      connections: { type: 'string' },
      listeners: { type: 'string' },
      rate: { type: 'string' },
      repeat: { type: 'string' },
      peers: { type: 'string' },
      batch: { type: 'string' },
      down: { type: 'string' },
      backlog: { type: 'string' },
      quick: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const quick = values.quick ?? false;
  return {
    duration: positiveNumber('duration', values.duration, quick ? 5 : 10),
    connections: numberList('connections', values.connections),
    listeners: numberList('listeners', values.listeners),
    rate: values.rate === undefined ? undefined : positiveNumber('rate', values.rate, 0),
    quick,
    peers: numberList('peers', values.peers),
    batch: numberList('batch', values.batch),
    down: values.down === undefined ? undefined : positiveNumber('down', values.down, 0),
    backlog: values.backlog === undefined ? undefined : Math.floor(positiveNumber('backlog', values.backlog, 0)),
    repeat: Math.floor(positiveNumber('repeat', values.repeat, 1)),
    profile: values.profile ?? false,
    help: values.help ?? false,
  };
}
