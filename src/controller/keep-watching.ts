// An informer that keeps watching: a watch that fails is started again after a
// delay that grows while restarts keep failing, and starts again from 1 s once
// a watch has lasted WATCH_SETTLED_MS ('connect' comes before the watch request,
// also when the watch then fails at once, so it cannot be the sign). Used by the
// shard and worker Job informers; the job informer (manager.ts) does the same
// with its own bookkeeping of how long the watch has been down (liveness).
import type { Informer, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { Backoff } from './backoff.js';

/** A watch that lasts this long without an error counts as working again. */
export const WATCH_SETTLED_MS = 10_000;

/** Restarts `informer` on every watch error until stopped; `onDown` is told of each error. */
export function keepWatching<T extends KubernetesObject>(
  informer: Informer<T>,
  opts: { log: Logger; what: string; onDown?: () => void },
): { stop(): void } {
  const backoff = new Backoff(1000, 30_000);
  let settle: NodeJS.Timeout | undefined;
  let stopping = false;
  const clearSettle = (): void => {
    if (settle) clearTimeout(settle);
    settle = undefined;
  };
  informer.on('connect', () => {
    clearSettle();
    settle = setTimeout(() => backoff.reset(), WATCH_SETTLED_MS);
    settle.unref();
  });
  informer.on('error', (err) => {
    clearSettle();
    opts.onDown?.();
    if (stopping) return;
    const delay = backoff.next();
    opts.log.warn({ err: String(err), retryInMs: delay }, `watch of ${opts.what} failed; restarting it`);
    setTimeout(() => {
      if (!stopping)
        informer
          .start()
          .catch((e: unknown) => opts.log.warn({ err: String(e) }, `restarting the watch of ${opts.what} failed`));
    }, delay).unref();
  });
  return {
    stop: () => {
      stopping = true;
      clearSettle();
    },
  };
}
