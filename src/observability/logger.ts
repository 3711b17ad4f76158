/**
 * The one pino logger. Child loggers carry scope (`team`, `source`, `eventId`, later `peer`);
 * secrets are redacted by path as a second line of defence — code should never log them anyway.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string = 'info'): Logger {
  return pino({
    level,
    base: { pid: process.pid },
    redact: {
      paths: ['secret', 'key', 'token', 'adminToken', '*.secret', '*.key', '*.token', 'headers.authorization'],
      censor: '[redacted]',
    },
  });
}
