// Waiting that a stop cuts short. A stop must never wait on something that
// only the stopped work could end (a full window whose head was abandoned).

/** Resolves when `promise` settles or `signal` aborts, whichever is first; never rejects. */
export function untilSettledOrAborted(promise: Promise<unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    promise.then(done, done);
  });
}

/** Sleeps `ms`, or less when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Thrown by work that noticed a stop between two steps; the object is left for a resumed run. */
export class StoppedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Stopped';
  }
}
