/**
 * `kite peers invite` and `kite peers accept`: pairing in one step (issue 6). The inviting side
 * registers the peer (the server generates both keys) and prints one line, `kite-invite-v1.…`
 * (src/cli/invite-token.ts), holding its URL, instance ID, team, suggested scopes and the
 * keys swapped for the other side; `accept` on the other instance checks that line and registers
 * its side with it. Nobody copies a key, and after `accept` no secret is printed again.
 *
 * Everything that can be checked is checked before anything is registered: the flags (with the
 * same rules as `peers add`, by building the same request body), the token, and on `accept`
 * that the Kite it talks to is the instance the invite was made for.
 */
import { CLIENT_ENV, CLIENT_FLAGS, KITE_URL_FLAG, TEAM_FLAG, apiRequest, printJson, resolveClient, teamPath } from '../api-client.js';
import { CliError, UsageError, listFlag, requiredString, slug, stringFlag, type Parsed } from '../args.js';
import type { Command } from '../command.js';
import { randomUUID } from 'node:crypto';
import { signStandard } from '../../providers/standard-signature.js';
import { thisInstance, type Instance } from './peers-add.js';
import { SETTINGS_FLAGS, newPeerBody, scopesFlag } from './peers-flags.js';

const DEFAULT_EXPIRY = '24h';
const MAX_EXPIRY_MS = 30 * 86_400_000;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

const SECRET_WARNING = 'It holds both secret keys of the pair: pass it on privately, keep it out of chats, tickets and shell history, and delete it once accepted.';

interface CreatedPeer {
  readonly id?: unknown;
  readonly instanceId?: unknown;
  readonly url?: unknown;
  readonly remoteTeam?: unknown;
  readonly scopes?: unknown;
  readonly outboundKey?: unknown;
  readonly inboundKey?: unknown;
}

function expiresIn(p: Parsed): number {
  const raw = stringFlag(p, 'expires-in') ?? DEFAULT_EXPIRY;
  const match = /^(\d+)([mhd])$/.exec(raw);
  const ms = match ? Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS] : NaN;
  if (!(ms >= UNIT_MS.m && ms <= MAX_EXPIRY_MS)) {
    throw new UsageError(`--expires-in must be minutes, hours or days, e.g. 30m, 24h, 7d, from 1m to 30d (got '${raw}')`, p.spec.command);
  }
  return ms;
}

function publicUrlOf(p: Parsed, self: Instance): string {
  const url = stringFlag(p, 'public-url') ?? self.publicUrl;
  if (!/^https:\/\/[^/?#]+/i.test(url) || /[?#]/.test(url)) {
    const where = stringFlag(p, 'public-url') === undefined ? `this instance's public URL (KITE_PUBLIC_URL) is ${url}` : `--public-url is ${url}`;
    throw new UsageError(`${where}: the other instance only accepts an https:// URL without query or fragment; pass --public-url https://…`, p.spec.command);
  }
  return url.replace(/\/+$/, '');
}

const invite: Command = {
  spec: {
    command: 'peers invite',
    summary: 'register a peer instance and print a one-line invite that completes the pairing on it',
    usage: 'kite peers invite --team <team> --instance-id <id> --url <https://…> --scopes <patterns> [--remote-team <team>] [--return-scopes <patterns>] [--expires-in <24h>] [settings]',
    details: [
      'Registers the other instance as a peer of --team here (both keys generated), then prints on',
      "stdout one line, kite-invite-v1.…, to give to the other instance's operator, who runs",
      "'kite peers accept <invite>' there. The invite holds this instance's URL, instance ID and team,",
      'the scopes suggested for the way back, and both keys, swapped for the other side: it is a',
      'secret. It expires after --expires-in; the keys themselves do not.',
      "Here --url is the other instance's URL; the Kite to send the request to is --kite-url or KITE_URL.",
    ],
    flags: {
      ...TEAM_FLAG,
      'instance-id': { type: 'string', value: '<id>', description: 'the other instance\'s instance ID (its KITE_INSTANCE_ID)', required: true },
      url: { type: 'string', value: '<https://…>', description: "the other instance's public URL; https:// only", required: true },
      scopes: { type: 'string', value: '<patterns>', description: "event types to forward to it, comma-separated, e.g. 'stripe.*'", multiple: true, required: true },
      'remote-team': { type: 'string', value: '<team>', description: 'the team on the other instance (default: the same slug as --team)' },
      'return-scopes': { type: 'string', value: '<patterns>', description: 'event types suggested for it to forward back (default: the same as --scopes)', multiple: true },
      'expires-in': { type: 'string', value: '<duration>', description: 'how long the invite can be accepted: 30m, 24h, 7d, … up to 30d (default 24h)' },
      'public-url': { type: 'string', value: '<https://…>', description: "the URL the other instance reaches this one at (default: this instance's KITE_PUBLIC_URL)" },
      ...SETTINGS_FLAGS,
      ...KITE_URL_FLAG,
    },
    env: CLIENT_ENV,
    examples: [
      "kite peers invite --team acme --instance-id kite-b --url https://b.kite.example.com --scopes 'stripe.*,com.kite.agent.message'",
      "kite peers invite --team acme --instance-id kite-eu --url https://eu.kite.example.com --remote-team acme-eu --scopes '*' --expires-in 1h",
    ],
  },
  async run(p: Parsed) {
    const team = slug(p, 'team', requiredString(p, 'team'));
    const body = newPeerBody(p);
    const returnScopes = listFlag(p, 'return-scopes').length > 0 ? scopesFlag(p, 'return-scopes') : undefined;
    const expiresAt = new Date(Date.now() + expiresIn(p)).toISOString();
    const client = await resolveClient(p, 'kite-url');
    const self = await thisInstance(client);
    const url = publicUrlOf(p, self);
    const { encodeInvite } = await import('../invite-token.js');
    const created = await apiRequest<CreatedPeer>(client, 'POST', teamPath(team, 'peers'), { body });
    const { id, remoteTeam, scopes, outboundKey, inboundKey } = created;
    if (typeof remoteTeam !== 'string' || !Array.isArray(scopes) || typeof outboundKey !== 'string' || typeof inboundKey !== 'string') {
      throw new CliError(`Kite registered the peer${typeof id === 'string' ? ` ${id}` : ''} but its answer lacks remoteTeam, scopes or the keys; remove it with 'kite peers rm' and try again`);
    }
    const token = encodeInvite({
      instanceId: self.instanceId, url, team, forInstanceId: body['instanceId'] as string, forTeam: remoteTeam,
      scopes: returnScopes ?? (scopes as string[]), outboundKey: inboundKey, inboundKey: outboundKey, expiresAt,
    });
    process.stdout.write(`${token}\n`);
    process.stderr.write([
      '',
      `Registered ${String(body['instanceId'])} (${String(body['url'])}) as a peer of team ${team}: id ${String(id)}, forwarding ${(scopes as string[]).join(',')} to its team ${remoteTeam}.`,
      `The line above is the invite. On ${String(body['instanceId'])}, run (KITE_URL and KITE_TOKEN set for it):`,
      '',
      `  kite peers accept --team ${remoteTeam} <the invite>`,
      '',
      `It expires at ${expiresAt}. ${SECRET_WARNING}`,
      '',
    ].join('\n'));
    return 0;
  },
};

const accept: Command = {
  spec: {
    command: 'peers accept',
    summary: "complete a pairing from another instance's invite: registers it as a peer, keys included",
    usage: 'kite peers accept <invite> [--team <team>] [--scopes <patterns>] [settings] [--url <url>] [--token <token>]',
    details: [
      "Reads an invite printed by 'kite peers invite' on the other instance, checks it (intact,",
      'version 1, not expired, made for the instance at --url / KITE_URL) and registers the inviting',
      'instance as a peer of the team the invite names, with the keys it carries. Nothing is',
      'registered when a check fails. Prints the peer (never its keys).',
      '--scopes defaults to the scopes the invite suggests; --team, when given, must match it.',
    ],
    positionals: [{ name: 'invite', description: 'the kite-invite-v1.… line (quote it; it holds secrets)' }],
    flags: {
      team: { type: 'string', value: '<team>', description: 'the team here to pair (default: the one the invite names)' },
      scopes: { type: 'string', value: '<patterns>', description: 'event types to forward to the inviting instance (default: those the invite suggests)', multiple: true },
      ...SETTINGS_FLAGS,
      ...CLIENT_FLAGS,
    },
    env: CLIENT_ENV,
    examples: ["kite peers accept --team acme 'kite-invite-v1.eyJpbnN0YW5jZUlkIjoi…'"],
  },
  async run(p: Parsed) {
    const { decodeInvite, InviteTokenError } = await import('../invite-token.js');
    let offer;
    try {
      offer = decodeInvite(p.positionals[0] ?? '');
    } catch (err) {
      if (err instanceof InviteTokenError) throw new UsageError(err.message, p.spec.command);
      throw err;
    }
    const team = slug(p, 'team', stringFlag(p, 'team') ?? offer.forTeam);
    if (team !== offer.forTeam) {
      throw new UsageError(
        `this invite pairs team ${offer.forTeam} here (${offer.instanceId} sends to /hooks/${offer.forTeam}/kite), not ${team}: accept it with --team ${offer.forTeam}, or ask for an invite made with --remote-team ${team}`,
        p.spec.command,
      );
    }
    const body = newPeerBody({
      spec: p.spec,
      values: {
        ...p.values,
        'instance-id': offer.instanceId, url: offer.url, 'remote-team': offer.team,
        scopes: listFlag(p, 'scopes').length > 0 ? listFlag(p, 'scopes') : offer.scopes,
        'outbound-key': offer.outboundKey, 'inbound-key': offer.inboundKey,
      },
      positionals: [],
    });
    const client = await resolveClient(p);
    const self = await thisInstance(client);
    if (self.instanceId === offer.instanceId) {
      throw new CliError(`this invite was made by ${offer.instanceId} itself; accept it on ${offer.forInstanceId} (point --url or KITE_URL at it)`);
    }
    if (self.instanceId !== offer.forInstanceId) {
      throw new CliError(`this invite was made for instance ${offer.forInstanceId}, but ${client.url} is ${self.instanceId}; point --url or KITE_URL at ${offer.forInstanceId}`);
    }
    const created = await apiRequest<CreatedPeer & Record<string, unknown>>(client, 'POST', teamPath(team, 'peers'), { body });
    const { outboundKey: _out, inboundKey: _in, ...shown } = created;
    printJson(shown);
    const handshake = await sendHandshake(offer.url, offer.team, self.instanceId, offer.outboundKey);
    process.stderr.write([
      '',
      `Paired team ${team} with team ${offer.team} on ${offer.instanceId} (${offer.url}): peer id ${String(created.id)}, forwarding ${(body['scopes'] as string[]).join(',')}.`,
      handshake.ok
        ? `${offer.instanceId} accepted a signed probe from this instance: events flow both ways now (anything it held for us while waiting is sent at once).`
        : `Warning: ${offer.instanceId} did not accept a signed probe from here (${handshake.problem}). The pairing is registered; check that this machine can reach ${offer.url}, or see 'kite peers show' on both sides.`,
      'The keys from the invite are stored and not shown again. Delete the invite: it holds both of them.',
      '',
    ].join('\n'));
    return 0;
  },
};

/**
 * Ends `accept` with a signed empty batch to the inviter, as this instance would send it (contract
 * §5 "Receiving": a probe stores nothing). It proves the pairing end to end, and the inviter, if it
 * had dead-lettered this instance for events sent before the invite was accepted (answered 401),
 * probes back at once instead of after its retry.maxDelayMs.
 */
async function sendHandshake(url: string, remoteTeam: string, selfInstanceId: string, key: string): Promise<{ ok: true } | { ok: false; problem: string }> {
  const id = `kite-handshake-${randomUUID()}`;
  const timestamp = Math.floor(Date.now() / 1000);
  try {
    const answer = await fetch(`${url.replace(/\/+$/, '')}/hooks/${encodeURIComponent(remoteTeam)}/kite`, {
      method: 'POST',
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
      headers: {
        'content-type': 'application/cloudevents-batch+json',
        'webhook-id': id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signStandard(key, id, timestamp, '[]'),
        'kite-peer': selfInstanceId,
      },
      body: '[]',
    });
    await answer.body?.cancel();
    return answer.ok ? { ok: true } : { ok: false, problem: `HTTP ${answer.status}` };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { ok: false, problem: cause?.code ?? cause?.message ?? (err as Error).message };
  }
}

export const pairingCommands = { invite, accept } as const;
