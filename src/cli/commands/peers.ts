/**
 * `kite peers add|list|show|pause|resume|rm|redrive|deliveries`: a team's federation peers
 * (contract §5, §6).
 *
 * A relationship is registered on both instances with a pair of keys, our outbound key being
 * their inbound key and the other way round. So `add` prints the peer (with both keys, which
 * Kite shows only in this answer) on stdout, and on stderr the one command to run on the other
 * instance to complete the pairing, keys swapped. That command holds both secrets; it says so.
 *
 * Flags are checked here before anything is sent (https:// URL, slugs, numbers in the ranges the
 * server accepts), so a typo is one line and exit 2 rather than a round trip. Settings not given
 * are left out of the request: the server's defaults apply (contract §6).
 */
import {
  CLIENT_ENV,
  CLIENT_FLAGS,
  KITE_URL_FLAG,
  TEAM_FLAG,
  apiRequest,
  printJson,
  resolveClient,
  teamPath,
} from '../api-client.js';
import { CliError, UsageError, booleanFlag, listFlag, oneOf, requiredString, slug, stringFlag, type Parsed } from '../args.js';
import type { Command, CommandGroup } from '../command.js';
import { pairingCommands } from './peers-invite.js';

// ── validation ─────────────────────────────────────────────────────────────────────────────

/** The server's limits (src/federation/peer-input.ts, src/events/type-patterns.ts). */
const MAX_SCOPES = 64;
const MAX_SCOPE_LENGTH = 256;
const SCOPE_CHARS = /^[A-Za-z0-9._*-]+$/;
const MAX_RATE = 1_000_000;
const MAX_DELAY_MS = 86_400_000;
const MAX_TIMEOUT_MS = 600_000;
const DELIVERY_STATUSES = ['pending', 'delivered', 'dead_lettered'] as const;

function usage(p: Parsed, message: string): UsageError {
  return new UsageError(message, p.spec.command);
}

/** A whole number flag within [min, max], or undefined when not given. */
function intFlag(p: Parsed, name: string, min: number, max: number): number | undefined {
  const raw = stringFlag(p, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    throw usage(p, `--${name} must be a whole number from ${min} to ${max} (got '${raw}')`);
  }
  return value;
}

/** `PER_SEC[/BURST]`, e.g. `100`, `0.5/10`, `100/200`. Only the given parts are sent. */
function rateFlag(p: Parsed, name: string): { perSecond: number; burst?: number } | undefined {
  const raw = stringFlag(p, name);
  if (raw === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?|\.\d+)(?:\/(\d+))?$/.exec(raw);
  const perSecond = match ? Number(match[1]) : NaN;
  const burst = match?.[2] === undefined ? undefined : Number(match[2]);
  if (!match || !(perSecond > 0) || perSecond > MAX_RATE || (burst !== undefined && (burst < 1 || burst > MAX_RATE))) {
    throw usage(
      p,
      `--${name} must be PER_SEC or PER_SEC/BURST: events per second above 0 (fractions allowed), and a whole burst from 1, both at most ${MAX_RATE} (got '${raw}')`,
    );
  }
  return burst === undefined ? { perSecond } : { perSecond, burst };
}

/** The peer's base URL: https:// only (federation is sent over TLS), no credentials, query or fragment. */
function peerUrl(p: Parsed): string {
  const raw = requiredString(p, 'url');
  if (!/^https:\/\//i.test(raw)) {
    throw usage(p, `--url must be the peer's https:// URL: federation is only sent over TLS (got '${raw}')`);
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usage(p, `--url is not a valid URL (got '${raw}')`);
  }
  if (url.username || url.password || raw.includes('?') || raw.includes('#')) {
    throw usage(p, `--url must not carry credentials, a query or a fragment (got '${raw}')`);
  }
  return raw;
}

/** `--scopes 'stripe.*,github.*'`, repeatable; the patterns of all of them, in order. */
function scopesFlag(p: Parsed): string[] {
  const scopes = listFlag(p, 'scopes').flatMap((v) => v.split(',').map((s) => s.trim()));
  if (scopes.length === 0) throw usage(p, 'missing required flag --scopes <patterns>');
  for (const scope of scopes) {
    if (scope === '') throw usage(p, '--scopes has an empty pattern; look for a doubled or trailing comma');
    if (scope.length > MAX_SCOPE_LENGTH) throw usage(p, `--scopes pattern longer than ${MAX_SCOPE_LENGTH} characters`);
    if (!SCOPE_CHARS.test(scope)) {
      throw usage(p, `--scopes pattern '${scope}' may contain only letters, digits, '.', '_', '-' and '*'`);
    }
  }
  if (scopes.length > MAX_SCOPES) throw usage(p, `--scopes has ${scopes.length} patterns; at most ${MAX_SCOPES} are allowed`);
  return scopes;
}

/** A Standard Webhooks secret, as the server requires: `whsec_` + base64. */
const KEY = /^whsec_(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;

function keyFlag(p: Parsed, name: string): string | undefined {
  const key = stringFlag(p, name);
  if (key === undefined) return undefined;
  if (key === 'whsec_' || !KEY.test(key)) throw usage(p, `--${name} must be a Standard Webhooks secret: 'whsec_' followed by base64`);
  return key;
}

function peerId(p: Parsed): string {
  const id = p.positionals[0]!;
  if (id === '') throw usage(p, '<id> must not be empty');
  return id;
}

/**
 * The body of `POST /v1/teams/{team}/peers` from the flags of `peers add`, every setting not
 * given left out. Exported for the tests.
 */
export function newPeerBody(p: Parsed): Record<string, unknown> {
  const body: Record<string, unknown> = {
    instanceId: slug(p, 'instance ID', requiredString(p, 'instance-id')),
    url: peerUrl(p),
  };
  const remoteTeam = stringFlag(p, 'remote-team');
  if (remoteTeam !== undefined) body['remoteTeam'] = slug(p, 'remote team', remoteTeam);
  body['scopes'] = scopesFlag(p);
  const maxHops = intFlag(p, 'max-hops', 1, 16);
  if (maxHops !== undefined) body['maxHops'] = maxHops;
  const rateLimit = rateFlag(p, 'rate-limit');
  if (rateLimit) body['rateLimit'] = rateLimit;
  const inboundRateLimit = rateFlag(p, 'inbound-rate-limit');
  if (inboundRateLimit) body['inboundRateLimit'] = inboundRateLimit;
  const retry: Record<string, number> = {};
  const retryFields = [
    ['max-attempts', 'maxAttempts', 1000],
    ['initial-delay-ms', 'initialDelayMs', MAX_DELAY_MS],
    ['max-delay-ms', 'maxDelayMs', MAX_DELAY_MS],
    ['timeout-ms', 'timeoutMs', MAX_TIMEOUT_MS],
  ] as const;
  for (const [flag, field, max] of retryFields) {
    const value = intFlag(p, flag, 1, max);
    if (value !== undefined) retry[field] = value;
  }
  if (retry['initialDelayMs'] !== undefined && retry['maxDelayMs'] !== undefined && retry['maxDelayMs'] < retry['initialDelayMs']) {
    throw usage(p, `--max-delay-ms (${retry['maxDelayMs']}) must not be below --initial-delay-ms (${retry['initialDelayMs']})`);
  }
  if (Object.keys(retry).length > 0) body['retry'] = retry;
  if (booleanFlag(p, 'disabled')) body['enabled'] = false;
  const outboundKey = keyFlag(p, 'outbound-key');
  if (outboundKey !== undefined) body['outboundKey'] = outboundKey;
  const inboundKey = keyFlag(p, 'inbound-key');
  if (inboundKey !== undefined) body['inboundKey'] = inboundKey;
  return body;
}

// ── the pairing command ────────────────────────────────────────────────────────────────────

/** POSIX shell quoting: bare when only safe characters, else single quotes. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

interface Instance {
  readonly instanceId: string;
  readonly publicUrl: string;
}

interface CreatedPeer {
  readonly instanceId?: unknown;
  readonly remoteTeam?: unknown;
  readonly scopes?: unknown;
  readonly outboundKey?: unknown;
  readonly inboundKey?: unknown;
}

/** What the other instance runs: its team is our remoteTeam, its remote team is ours, keys swapped. */
export function pairingCommand(team: string, self: Instance, created: CreatedPeer): string {
  const { remoteTeam, scopes, outboundKey, inboundKey } = created;
  if (
    typeof remoteTeam !== 'string' ||
    !Array.isArray(scopes) ||
    !scopes.every((s): s is string => typeof s === 'string') ||
    typeof outboundKey !== 'string' ||
    typeof inboundKey !== 'string'
  ) {
    throw new CliError('Kite created the peer but its answer lacks remoteTeam, scopes or the keys; cannot print the pairing command');
  }
  const args = ['kite', 'peers', 'add', '--team', remoteTeam, '--instance-id', self.instanceId, '--url', self.publicUrl];
  // On the other side, the remote team is this team; the default (its own slug) is only right when they match.
  if (remoteTeam !== team) args.push('--remote-team', team);
  args.push('--scopes', scopes.join(','), '--outbound-key', inboundKey, '--inbound-key', outboundKey);
  return args.map(shellQuote).join(' ');
}

async function thisInstance(client: Awaited<ReturnType<typeof resolveClient>>): Promise<Instance> {
  const answer = await apiRequest<{ instanceId?: unknown; publicUrl?: unknown }>(client, 'GET', '/v1/instance');
  if (typeof answer?.instanceId !== 'string' || typeof answer.publicUrl !== 'string') {
    throw new CliError(`GET ${client.url}/v1/instance did not answer {"instanceId", "publicUrl"}; is ${client.url} a Kite?`);
  }
  return { instanceId: answer.instanceId, publicUrl: answer.publicUrl };
}

// ── commands ───────────────────────────────────────────────────────────────────────────────

const ID_ARG = [{ name: 'id', description: "the peer's id, as printed by 'kite peers add' or 'kite peers list'" }] as const;

const add: Command = {
  spec: {
    command: 'peers add',
    summary: 'register a peer instance and print the command that completes the pairing on it',
    usage:
      'kite peers add --team <team> --instance-id <id> --url <https://…> --scopes <patterns> [--remote-team <team>] [settings] [--outbound-key <k>] [--inbound-key <k>]',
    details: [
      "Prints the peer as JSON, with outboundKey and inboundKey: Kite shows the keys only this once.",
      'Then prints on stderr the command to run on the other instance (with KITE_URL and KITE_TOKEN',
      "set for it) to register this instance there, keys swapped. That command contains both secret",
      'keys: pass it on privately.',
      'Settings not given take the server defaults: --max-hops 3, --rate-limit 100/200,',
      '--inbound-rate-limit 1000/2000, --max-attempts 20, --initial-delay-ms 1000,',
      '--max-delay-ms 300000, --timeout-ms 10000; both keys are generated when not given.',
      "Here --url is the peer's URL; the Kite to send the request to is --kite-url or KITE_URL.",
    ],
    flags: {
      ...TEAM_FLAG,
      'instance-id': { type: 'string', value: '<id>', description: "the peer's instance ID (its KITE_INSTANCE_ID)", required: true },
      url: { type: 'string', value: '<https://…>', description: "the peer's public URL; https:// only", required: true },
      scopes: {
        type: 'string',
        value: '<patterns>',
        description: "event types to forward, comma-separated, e.g. 'stripe.*,github.*'",
        multiple: true,
        required: true,
      },
      'remote-team': { type: 'string', value: '<team>', description: "the team on the peer's side (default: the same slug as --team)" },
      'max-hops': { type: 'string', value: '<n>', description: 'forward only events that crossed fewer than n instances, 1-16 (default 3)' },
      'rate-limit': { type: 'string', value: '<per-sec[/burst]>', description: 'events per second sent to the peer, and burst (default 100/200)' },
      'inbound-rate-limit': {
        type: 'string',
        value: '<per-sec[/burst]>',
        description: 'events per second accepted from the peer, and burst (default 1000/2000)',
      },
      'max-attempts': { type: 'string', value: '<n>', description: 'failed attempts before the peer is dead-lettered, 1-1000 (default 20)' },
      'initial-delay-ms': { type: 'string', value: '<ms>', description: 'first retry delay (default 1000)' },
      'max-delay-ms': { type: 'string', value: '<ms>', description: 'longest retry delay, and the probe interval when dead-lettered (default 300000)' },
      'timeout-ms': { type: 'string', value: '<ms>', description: 'timeout of each delivery request, at most 600000 (default 10000)' },
      disabled: { type: 'boolean', description: "create it paused: events queue but are not sent until 'kite peers resume'" },
      'outbound-key': { type: 'string', value: '<whsec_…>', description: 'key to sign deliveries to the peer with (default: generated)' },
      'inbound-key': { type: 'string', value: '<whsec_…>', description: "key the peer's deliveries must be signed with (default: generated)" },
      ...KITE_URL_FLAG,
    },
    env: CLIENT_ENV,
    examples: [
      "kite peers add --team acme --instance-id kite-b --url https://b.kite.example.com --scopes 'stripe.*,github.*'",
      "kite peers add --team acme --instance-id kite-b --url https://b.kite.example.com --remote-team acme-eu --scopes '*' --max-hops 2 --rate-limit 50/100",
    ],
  },
  async run(p: Parsed) {
    const team = slug(p, 'team', requiredString(p, 'team'));
    const body = newPeerBody(p);
    const client = await resolveClient(p, 'kite-url');
    // Asked first: if this fails nothing has been created, and the pairing command needs it.
    const self = await thisInstance(client);
    const created = await apiRequest<CreatedPeer>(client, 'POST', teamPath(team, 'peers'), { body });
    printJson(created);
    const command = pairingCommand(team, self, created);
    const other = typeof created.instanceId === 'string' ? created.instanceId : 'the other instance';
    const lines = [
      '',
      'The keys above are shown only this once: Kite keeps no way to print them again.',
      `To complete the pairing, run this against ${other} (KITE_URL and KITE_TOKEN set for it, or add --kite-url and --token).`,
      'It contains both secret keys of the pair: pass it on privately, and keep it out of chats, tickets and shell history.',
      '',
      `  ${command}`,
      '',
    ];
    if (!/^https:\/\//i.test(self.publicUrl)) {
      lines.push(
        `Warning: this instance's public URL ${self.publicUrl} is not https://, so ${other} will refuse it;`,
        "set KITE_PUBLIC_URL to this instance's https:// URL and use that for --url.",
        '',
      );
    }
    process.stderr.write(lines.join('\n'));
    return 0;
  },
};

const list: Command = {
  spec: {
    command: 'peers list',
    summary: "list a team's peers with their state and delivery counts (never keys)",
    usage: 'kite peers list --team <team> [--url <url>] [--token <token>]',
    flags: { ...TEAM_FLAG, ...CLIENT_FLAGS },
    env: CLIENT_ENV,
    examples: ['kite peers list --team acme'],
  },
  async run(p: Parsed) {
    const team = slug(p, 'team', requiredString(p, 'team'));
    const client = await resolveClient(p);
    printJson(await apiRequest(client, 'GET', teamPath(team, 'peers')));
    return 0;
  },
};

const show: Command = {
  spec: {
    command: 'peers show',
    summary: 'show one peer: settings, state, pending/delivered/dead-lettered counts, last error',
    usage: 'kite peers show --team <team> <id> [--url <url>] [--token <token>]',
    positionals: ID_ARG,
    flags: { ...TEAM_FLAG, ...CLIENT_FLAGS },
    env: CLIENT_ENV,
    examples: ['kite peers show --team acme 6b1f0c2e'],
  },
  async run(p: Parsed) {
    const team = slug(p, 'team', requiredString(p, 'team'));
    const id = peerId(p);
    const client = await resolveClient(p);
    printJson(await apiRequest(client, 'GET', teamPath(team, 'peers', id)));
    return 0;
  },
};

function setEnabled(enabled: boolean): Command {
  const verb = enabled ? 'resume' : 'pause';
  return {
    spec: {
      command: `peers ${verb}`,
      summary: enabled ? 'resume delivery to a paused peer' : 'pause delivery to a peer (its events keep queueing)',
      usage: `kite peers ${verb} --team <team> <id> [--url <url>] [--token <token>]`,
      details: [`Sends PATCH {"enabled": ${enabled}} and prints the peer.`],
      positionals: ID_ARG,
      flags: { ...TEAM_FLAG, ...CLIENT_FLAGS },
      env: CLIENT_ENV,
      examples: [`kite peers ${verb} --team acme 6b1f0c2e`],
    },
    async run(p: Parsed) {
      const team = slug(p, 'team', requiredString(p, 'team'));
      const id = peerId(p);
      const client = await resolveClient(p);
      printJson(await apiRequest(client, 'PATCH', teamPath(team, 'peers', id), { body: { enabled } }));
      return 0;
    },
  };
}

const rm: Command = {
  spec: {
    command: 'peers rm',
    summary: 'remove a peer: nothing more is sent to it, its undelivered deliveries are discarded',
    usage: 'kite peers rm --team <team> <id> [--url <url>] [--token <token>]',
    details: ["Its delivered history stays readable with 'kite peers deliveries --team <team> --peer <id>'."],
    positionals: ID_ARG,
    flags: { ...TEAM_FLAG, ...CLIENT_FLAGS },
    env: CLIENT_ENV,
    examples: ['kite peers rm --team acme 6b1f0c2e'],
  },
  async run(p: Parsed) {
    const team = slug(p, 'team', requiredString(p, 'team'));
    const id = peerId(p);
    const client = await resolveClient(p);
    await apiRequest(client, 'DELETE', teamPath(team, 'peers', id));
    process.stdout.write(`removed peer ${id}\n`);
    return 0;
  },
};

const redrive: Command = {
  spec: {
    command: 'peers redrive',
    summary: "requeue a peer's dead-lettered deliveries, in order, and bring it back to healthy",
    usage: 'kite peers redrive --team <team> <id> [--url <url>] [--token <token>]',
    details: ['Prints {"requeued": n}.'],
    positionals: ID_ARG,
    flags: { ...TEAM_FLAG, ...CLIENT_FLAGS },
    env: CLIENT_ENV,
    examples: ['kite peers redrive --team acme 6b1f0c2e'],
  },
  async run(p: Parsed) {
    const team = slug(p, 'team', requiredString(p, 'team'));
    const id = peerId(p);
    const client = await resolveClient(p);
    printJson(await apiRequest(client, 'POST', teamPath(team, 'peers', id, 'redrive')));
    return 0;
  },
};

const deliveries: Command = {
  spec: {
    command: 'peers deliveries',
    summary: "list a team's federation deliveries, newest first",
    usage: 'kite peers deliveries --team <team> [--peer <id>] [--status pending|delivered|dead_lettered] [--limit <n>]',
    details: ['Each item: id, eventId, eventSource, eventType, peerId, status, attempts, lastStatusCode, lastError, createdAt, deliveredAt.'],
    flags: {
      ...TEAM_FLAG,
      peer: { type: 'string', value: '<id>', description: "only this peer's deliveries (also works for a removed peer)" },
      status: { type: 'string', value: '<status>', description: `only deliveries in this status: ${DELIVERY_STATUSES.join('|')}` },
      limit: { type: 'string', value: '<n>', description: 'at most n items, 1-1000 (default 100)' },
      ...CLIENT_FLAGS,
    },
    env: CLIENT_ENV,
    examples: ['kite peers deliveries --team acme --peer 6b1f0c2e --status dead_lettered --limit 20'],
  },
  async run(p: Parsed) {
    const team = slug(p, 'team', requiredString(p, 'team'));
    const query = new URLSearchParams();
    const peer = stringFlag(p, 'peer');
    if (peer !== undefined) {
      if (peer === '') throw usage(p, '--peer must not be empty');
      query.set('peer', peer);
    }
    const status = stringFlag(p, 'status');
    if (status !== undefined) query.set('status', oneOf(p, 'status', status, DELIVERY_STATUSES));
    const limit = intFlag(p, 'limit', 1, 1000);
    if (limit !== undefined) query.set('limit', String(limit));
    const client = await resolveClient(p);
    const search = query.toString() ? `?${query.toString()}` : '';
    printJson(await apiRequest(client, 'GET', `${teamPath(team, 'deliveries')}${search}`));
    return 0;
  },
};

export const peers: CommandGroup = {
  name: 'peers',
  summary: 'federate with other Kite instances: pair, pause, redrive, see deliveries',
  subcommands: { add, ...pairingCommands, list, show, pause: setEnabled(false), resume: setEnabled(true), rm, redrive, deliveries },
};
