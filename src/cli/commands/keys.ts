/**
 * `kite keys create|list|revoke`: a team's API keys. The secret is shown once by the server
 * (it keeps only a hash), so `create` says so on stderr while stdout stays the JSON answer a
 * script can pipe into `jq -r .key`.
 */
import { CLIENT_ENV, CLIENT_FLAGS, TEAM_FLAG, apiRequest, printJson, resolveClient, teamPath } from '../api-client.js';
import { oneOf, requiredString, slug, type Parsed } from '../args.js';
import type { Command, CommandGroup } from '../command.js';

const ROLES = ['admin', 'agent'] as const;

const create: Command = {
  spec: {
    command: 'keys create',
    summary: 'create an API key for a team',
    usage: 'kite keys create --team <team> --name <name> --role admin|agent [--url <url>] [--token <token>]',
    details: [
      'Prints {"id","name","role","key"}. The key is shown only this once; store it now.',
      'An agent key may listen and publish; an admin key may also manage keys, sources and peers.',
    ],
    flags: {
      ...TEAM_FLAG,
      name: { type: 'string', value: '<name>', description: 'a name for the key, e.g. the agent using it', required: true },
      role: { type: 'string', value: 'admin|agent', description: 'what the key may do', required: true },
      ...CLIENT_FLAGS,
    },
    env: CLIENT_ENV,
    examples: ['kite keys create --team acme --name billing-bot --role agent'],
  },
  async run(p: Parsed) {
    const team = slug(p, 'team', requiredString(p, 'team'));
    const name = requiredString(p, 'name');
    const role = oneOf(p, 'role', requiredString(p, 'role'), ROLES);
    const client = await resolveClient(p);
    printJson(await apiRequest(client, 'POST', teamPath(team, 'keys'), { body: { name, role } }));
    process.stderr.write('This key is shown only once: store it now. Kite keeps only a hash.\n');
    return 0;
  },
};

const list: Command = {
  spec: {
    command: 'keys list',
    summary: "list a team's keys (never their secrets)",
    usage: 'kite keys list --team <team> [--url <url>] [--token <token>]',
    flags: { ...TEAM_FLAG, ...CLIENT_FLAGS },
    env: CLIENT_ENV,
    examples: ['kite keys list --team acme'],
  },
  async run(p: Parsed) {
    const team = slug(p, 'team', requiredString(p, 'team'));
    const client = await resolveClient(p);
    printJson(await apiRequest(client, 'GET', teamPath(team, 'keys')));
    return 0;
  },
};

const revoke: Command = {
  spec: {
    command: 'keys revoke',
    summary: 'revoke a key at once (its open listeners are closed)',
    usage: 'kite keys revoke --team <team> <id> [--url <url>] [--token <token>]',
    positionals: [{ name: 'id', description: "the key's id, as printed by 'kite keys create' or 'kite keys list'" }],
    flags: { ...TEAM_FLAG, ...CLIENT_FLAGS },
    env: CLIENT_ENV,
    examples: ['kite keys revoke --team acme 3f2c9a'],
  },
  async run(p: Parsed) {
    const team = slug(p, 'team', requiredString(p, 'team'));
    const id = p.positionals[0]!;
    const client = await resolveClient(p);
    await apiRequest(client, 'DELETE', teamPath(team, 'keys', id));
    process.stdout.write(`revoked key ${id}\n`);
    return 0;
  },
};

export const keys: CommandGroup = {
  name: 'keys',
  summary: "create, list and revoke a team's API keys",
  subcommands: { create, list, revoke },
};
