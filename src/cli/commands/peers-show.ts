/** `kite peers list|show|deliveries`: the read-only views of a team's peers, printed as JSON. */
import { CLIENT_ENV, CLIENT_FLAGS, TEAM_FLAG, apiRequest, printJson, resolveClient, teamPath } from '../api-client.js';
import { oneOf, requiredString, slug, stringFlag, type Parsed } from '../args.js';
import type { Command } from '../command.js';
import { ID_ARG, intFlag, peerId, usage } from './peers-flags.js';

const DELIVERY_STATUSES = ['pending', 'delivered', 'dead_lettered'] as const;

export const list: Command = {
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

export const show: Command = {
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

export const deliveries: Command = {
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
