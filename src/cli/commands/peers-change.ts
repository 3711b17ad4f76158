/** `kite peers pause|resume|rm|redrive`: the changes to one peer, each one request by its id. */
import { CLIENT_ENV, CLIENT_FLAGS, TEAM_FLAG, apiRequest, printJson, resolveClient, teamPath } from '../api-client.js';
import { requiredString, slug, type Parsed } from '../args.js';
import type { Command } from '../command.js';
import { ID_ARG, peerId } from './peers-flags.js';

export function setEnabled(enabled: boolean): Command {
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

export const rm: Command = {
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

export const redrive: Command = {
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
