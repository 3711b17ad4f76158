/**
 * `kite teams create <slug>`: the first step on a fresh instance. Creating a team needs the admin
 * token (contract §3), which the CLI finds in the data dir when run next to `kite serve`.
 */
import { CLIENT_ENV, CLIENT_FLAGS, apiRequest, printJson, resolveClient } from '../api-client.js';
import { slug, type Parsed } from '../args.js';
import type { Command, CommandGroup } from '../command.js';

const create: Command = {
  spec: {
    command: 'teams create',
    summary: 'create a team (needs the admin token)',
    usage: 'kite teams create <slug> [--url <url>] [--token <token>]',
    positionals: [{ name: 'slug', description: 'the team slug: lowercase letters, digits and -, at most 63' }],
    flags: { ...CLIENT_FLAGS },
    env: CLIENT_ENV,
    examples: ['kite teams create acme'],
  },
  async run(p: Parsed) {
    const team = slug(p, 'team', p.positionals[0]!);
    const client = await resolveClient(p);
    printJson(await apiRequest(client, 'POST', '/v1/teams', { body: { slug: team } }));
    return 0;
  },
};

export const teams: CommandGroup = {
  name: 'teams',
  summary: 'create teams (tenants)',
  subcommands: { create },
};
