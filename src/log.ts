// Structured JSON logs (pino). Secrets never reach a log: credential fields are redacted.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level,
    base: { component: 's3-encryption-operator' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['*.credentials', '*.secretAccessKey', '*.sessionToken', 'credentials', 'secretAccessKey', 'sessionToken'],
      censor: '[redacted]',
    },
  });
}
