/**
 * A pairing invite (issue 6, "pairing in one step"): one line that carries everything the other
 * instance needs to register its side of a peer relationship (contract §5, §6), so nobody copies
 * keys by hand.
 *
 *   kite-invite-v1.<base64url of the JSON below>
 *
 * The JSON is written from the accepting side's point of view: `outboundKey` is the key the
 * accepter signs with (the inviter's inbound key) and `inboundKey` the one it verifies with (the
 * inviter's outbound key). The inviter has registered its side already; the token holds both
 * secrets of the pair and is only as safe as the channel it travels over. `expiresAt` bounds how
 * long a leaked token can be used to complete the pairing; nothing server-side tracks tokens.
 */
import { z } from 'zod';
import { isStandardSecret } from '../providers/standard-signature.js';

export const INVITE_PREFIX = 'kite-invite-v1.';

const SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;
const SCOPE = /^[A-Za-z0-9._*-]{1,256}$/;

const inviteSchema = z.strictObject({
  /** The inviting instance: the peer the accepter registers. */
  instanceId: z.string().regex(SLUG, 'must be an instance ID'),
  url: z.url({ protocol: /^https$/, error: 'must be an https:// URL' }),
  /** The inviter's team: the accepter's remoteTeam. */
  team: z.string().regex(SLUG, 'must be a team slug'),
  /** The instance the invite was made for, and its team there (the inviter's remoteTeam). */
  forInstanceId: z.string().regex(SLUG, 'must be an instance ID'),
  forTeam: z.string().regex(SLUG, 'must be a team slug'),
  /** Suggested scopes for what the accepter forwards back (the inviter's own, unless chosen). */
  scopes: z.array(z.string().regex(SCOPE, 'must be a type pattern')).min(1).max(64),
  outboundKey: z.string().refine(isStandardSecret, 'must be a whsec_ key'),
  inboundKey: z.string().refine(isStandardSecret, 'must be a whsec_ key'),
  expiresAt: z.iso.datetime(),
});

export type Invite = z.infer<typeof inviteSchema>;

/** Why a token cannot be used, in a sentence for the person holding it. */
export class InviteTokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InviteTokenError';
  }
}

export function encodeInvite(invite: Invite): string {
  return INVITE_PREFIX + Buffer.from(JSON.stringify(inviteSchema.parse(invite)), 'utf8').toString('base64url');
}

/** The invite in `token`, checked: well-formed, version 1, every field valid, not expired at `now`. */
export function decodeInvite(token: string, now = new Date()): Invite {
  const trimmed = token.trim();
  const version = /^kite-invite-v(\d+)\./.exec(trimmed);
  if (!version) {
    throw new InviteTokenError(`this is not a Kite invite: it should start with '${INVITE_PREFIX}' (as printed by 'kite peers invite')`);
  }
  if (version[1] !== '1') {
    throw new InviteTokenError(`this invite is version ${version[1]}, and this kite reads version 1 only: upgrade kite, or ask for an invite made by the same version`);
  }
  const body = trimmed.slice(INVITE_PREFIX.length);
  let json: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(body)) throw new Error('not base64url');
    json = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    throw new InviteTokenError('this invite is damaged (cut short or altered?): copy the whole line, from kite-invite-v1. to its last character');
  }
  const parsed = inviteSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length > 0 ? issue.path.join('.') : 'the invite';
    throw new InviteTokenError(`this invite is damaged or was edited: ${where} ${issue.message}`);
  }
  const invite = parsed.data;
  if (Date.parse(invite.expiresAt) <= now.getTime()) {
    throw new InviteTokenError(
      `this invite expired at ${invite.expiresAt}: ask for a new one (on ${invite.instanceId}, remove the peer it registered with 'kite peers rm' first)`,
    );
  }
  return invite;
}
