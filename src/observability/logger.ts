/**
 * The one pino logger. Child loggers carry scope (`team`, `source`, `eventId`, later `peer`);
 * secrets are redacted by path as a second line of defence — code should never log them anyway.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * `toStderr` for commands whose stdout is their result (`kite migrate`): the log lines go beside
 * it, not into it. The server logs to stdout, as log collectors expect.
 */
export function createLogger(level: string = 'info', options: { toStderr?: boolean } = {}): Logger {
  const settings = {
    level,
    base: { pid: process.pid },
    redact: {
      paths: ['secret', 'key', 'token', 'adminToken', '*.secret', '*.key', '*.token', 'headers.authorization'],
      censor: '[redacted]',
    },
  };
  return options.toStderr ? pino(settings, pino.destination(2)) : pino(settings);
}
