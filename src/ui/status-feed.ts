/**
 * Pushes status snapshots to the status page's open sockets (`/ui/live`).
 *
 * A session starts unauthenticated: its first message must be `{"type":"auth","token":…}` (the
 * token never travels in a URL, so no access log sees it). The admin token sees the instance, a
 * team admin key its own team; anything else (also a first message that is not `auth`) is closed
 * with 1008 and the page asks again; a socket that says nothing is closed after 10 s.
 *
 * While at least one session is authenticated, a tick every TICK_MS builds one snapshot per
 * scope in use and sends it to each session whose last frame differs; with no session there is
 * no timer and no query. Ticks never overlap: a slow database delays the next one. A tick also
 * closes sessions whose key was revoked (1008).
 */
import { authorizeTeam, type Principal } from '../auth/principal.js';
import type { SocketConnection, SocketSession } from '../http/socket-route.js';
import type { StatusScope, StatusSnapshot } from './status-snapshot.js';

export const TICK_MS = 1000;
const AUTH_DEADLINE_MS = 10_000;
const CLOSE_POLICY_VIOLATION = 1008;
const CLOSE_TRY_AGAIN_LATER = 1013;

export interface StatusFeedDeps {
  readonly authenticate: (token: string) => Promise<Principal>;
  readonly build: (scope: StatusScope) => Promise<StatusSnapshot>;
  /** Which of these key ids are revoked (or gone). */
  readonly revokedAmong: (keyIds: readonly string[]) => Promise<string[]>;
  readonly onError: (err: unknown) => void;
  readonly tickMs?: number;
}

interface Session {
  readonly connection: SocketConnection;
  scope?: StatusScope;
  keyId?: string;
  /** The last snapshot frame sent, to send only changes. */
  last?: string;
  closed: boolean;
  /** Its credentials are being checked: messages until then are ignored. */
  authenticating?: boolean;
}

export class StatusFeed {
  private readonly sessions = new Set<Session>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private again = false;

  constructor(private readonly deps: StatusFeedDeps) {}

  get size(): number {
    return this.sessions.size;
  }

  open(connection: SocketConnection): SocketSession {
    const session: Session = { connection, closed: false };
    const deadline = setTimeout(() => {
      if (!session.scope) connection.end(CLOSE_POLICY_VIOLATION, 'no credentials');
    }, AUTH_DEADLINE_MS);
    deadline.unref();
    return {
      message: (text) => {
        const message = parseMessage(text);
        if (session.scope) {
          if (message?.type === 'refresh') this.refresh();
        } else if (!session.authenticating) {
          // The first message must be the credentials: anything else (garbage, a refresh, a token
          // that is not a string) is closed with 1008 at once, not at the 10 s deadline.
          if (message?.type !== 'auth') {
            connection.end(CLOSE_POLICY_VIOLATION, 'the first message must be {"type":"auth","token":…}');
            return;
          }
          session.authenticating = true;
          void this.authenticate(session, message.token);
        }
      },
      close: () => {
        clearTimeout(deadline);
        session.closed = true;
        this.sessions.delete(session);
        if (this.sessions.size === 0) this.stopTimer();
      },
    };
  }

  /** Sends a snapshot now (after an action of the page, so it sees its effect at once). */
  refresh(): void {
    void this.tick();
  }

  private async authenticate(session: Session, token: string): Promise<void> {
    let principal: Principal;
    try {
      principal = await this.deps.authenticate(token);
      if (principal.kind === 'key') authorizeTeam(principal, principal.teamSlug, ['admin']);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'unauthorized' || code === 'forbidden') session.connection.end(CLOSE_POLICY_VIOLATION, code);
      else {
        // Not a verdict on the token (the database is away): the page keeps it and reconnects.
        this.deps.onError(err);
        session.connection.end(CLOSE_TRY_AGAIN_LATER, 'try again later');
      }
      return;
    }
    if (session.closed) return;
    session.scope = principal.kind === 'key' ? { kind: 'team', teamId: principal.teamId } : { kind: 'instance' };
    if (principal.kind === 'key') session.keyId = principal.keyId;
    const scopeTeam = principal.kind === 'key' ? principal.teamSlug : null;
    session.connection.send(JSON.stringify({ type: 'hello', team: scopeTeam }));
    this.sessions.add(session);
    this.startTimer();
    this.refresh();
  }

  private startTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.deps.tickMs ?? TICK_MS);
    this.timer.unref();
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (this.ticking) {
      this.again = true; // a refresh asked during a tick runs right after it
      return;
    }
    this.ticking = true;
    try {
      do {
        this.again = false;
        await this.closeRevoked();
        await this.push();
      } while (this.again && this.sessions.size > 0);
    } catch (err) {
      this.deps.onError(err);
    } finally {
      this.ticking = false;
    }
  }

  private async push(): Promise<void> {
    const byScope = new Map<string, { scope: StatusScope; sessions: Session[] }>();
    for (const session of this.sessions) {
      if (!session.scope) continue;
      const key = session.scope.kind === 'team' ? `team:${session.scope.teamId}` : 'instance';
      const group = byScope.get(key) ?? { scope: session.scope, sessions: [] };
      group.sessions.push(session);
      byScope.set(key, group);
    }
    await Promise.all([...byScope.values()].map(async ({ scope, sessions }) => {
      let frame: string;
      try {
        frame = JSON.stringify({ type: 'snapshot', ...(await this.deps.build(scope)) });
      } catch (err) {
        // The page keeps what it shows and marks it stale; the next tick tries again.
        this.deps.onError(err);
        frame = JSON.stringify({ type: 'stale', message: 'The status could not be read from the database; retrying.' });
      }
      for (const session of sessions) {
        if (session.closed || session.last === frame) continue;
        session.last = frame;
        session.connection.send(frame);
      }
    }));
  }

  private async closeRevoked(): Promise<void> {
    const keyIds = [...new Set([...this.sessions].flatMap((s) => (s.keyId ? [s.keyId] : [])))];
    if (keyIds.length === 0) return;
    const revoked = new Set(await this.deps.revokedAmong(keyIds));
    for (const session of this.sessions) {
      if (session.keyId && revoked.has(session.keyId)) session.connection.end(CLOSE_POLICY_VIOLATION, 'key revoked');
    }
  }
}

type ClientMessage = { type: 'auth'; token: string } | { type: 'refresh' };

function parseMessage(text: string): ClientMessage | undefined {
  try {
    const value = JSON.parse(text) as { type?: unknown; token?: unknown };
    if (value.type === 'auth' && typeof value.token === 'string' && value.token.length > 0) return { type: 'auth', token: value.token };
    if (value.type === 'refresh') return { type: 'refresh' };
  } catch {
    /* not JSON: ignored */
  }
  return undefined;
}
