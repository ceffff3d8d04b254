// Trying a step again through transient errors (an outage, throttling that
// outlasted the SDK's own retries): one wrapper around a step, with the tries
// as data (attempt n, since when, why), so a step never sleeps or calls itself.
// "Transient" is errors.ts's isTransient; the SDK's attempts happen inside each try.
import { DEFAULT_MAX_ATTEMPTS } from './clients.js';
import { backoff, errorCode, isTransient, TRANSIENT_RETRY_MS } from './errors.js';

export interface Attempt {
  /** 0 for the first try. */
  n: number;
  /** performance.now() when the first try started. */
  since: number;
  /** The code of the transient error that ended the previous try; absent on the first. */
  reason?: string;
}

export type Tried<T> =
  | { kind: 'done'; value: T }
  /** The signal ended a backoff: the step was not finished. */
  | { kind: 'stopped' }
  /** A non-transient error, or a transient one past the window (or once `keepTrying` said no). */
  | { kind: 'failed'; error: unknown; transient: boolean; attempt: Attempt };

export interface TryOptions {
  signal?: AbortSignal;
  /** How long to keep trying through transient errors, from the first try (default TRANSIENT_RETRY_MS). */
  windowMs?: number;
  /** Asked before each backoff: false ends the tries (e.g. the run has failed). */
  keepTrying?: () => boolean;
}

export async function tryThroughTransient<T>(
  step: (attempt: Attempt) => Promise<T>,
  opts: TryOptions = {},
): Promise<Tried<T>> {
  const attempt: Attempt = { n: 0, since: performance.now() };
  const windowMs = opts.windowMs ?? TRANSIENT_RETRY_MS;
  for (;;) {
    try {
      return { kind: 'done', value: await step({ ...attempt }) };
    } catch (err) {
      const transient = isTransient(err, DEFAULT_MAX_ATTEMPTS);
      const inWindow = performance.now() - attempt.since < windowMs;
      if (!transient || !inWindow || opts.keepTrying?.() === false) {
        return { kind: 'failed', error: err, transient, attempt: { ...attempt } };
      }
      if (!(await backoff(attempt.n, opts.signal))) return { kind: 'stopped' };
      attempt.n++;
      attempt.reason = errorCode(err);
    }
  }
}
