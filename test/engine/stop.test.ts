// A stop never hangs (issue 9, scenario 3; review #2, #12), on SeaweedFS (+ local-kms)
// through the fault proxy: one key whose HEAD always answers 503 sits at the head of
// the window while the others finish, until the window is full and listing pauses.
// A stop (the caller's abort) or a fatal error (the run's own) must then return in
// bounded time: backoffs are cut short, and the stuck key stays above the checkpoint
// for a resumed run, which then finishes the bucket without counting anything twice.
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createClients, runEngine, type Plan } from '../../src/engine/index.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { connectionFor, createBucket, enginePlan, putObjects, s3Client, sleep, within } from '../harness/context.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;

const STUCK = 'a-stuck';
const OTHERS = 3000;
/** The engine's default window at concurrency 32: max(1000, 64 x 32). */
const WINDOW = 2048;

const others = (): string[] => Array.from({ length: OTHERS }, (_, i) => `k/${String(i).padStart(5, '0')}`);

function plan(bucket: string, extra: Partial<Plan> = {}): Plan {
  return enginePlan(
    info,
    bucket,
    { type: 'AES256' },
    { connection: connectionFor(info, { endpoint: proxy.url }), concurrency: 32, ...extra },
  );
}

/** Keys whose HEAD the proxy answered since `from` (proxy clock). */
function headedKeys(bucket: string, from = 0): Set<string> {
  return new Set(
    proxy.requests
      .filter((r) => r.at >= from && r.bucket === bucket && r.operation === 'HeadObject' && r.key !== undefined)
      .map((r) => r.key!),
  );
}

/**
 * Waits until the window is full: every key up to the window's size was looked at and
 * no new key for a second (listing paused behind the stuck head). At least `minMs`.
 */
async function windowFull(bucket: string, minMs: number): Promise<void> {
  const started = Date.now();
  let last = -1;
  let stableSince = Date.now();
  for (;;) {
    const n = headedKeys(bucket).size;
    if (n !== last) {
      last = n;
      stableSince = Date.now();
    }
    if (n >= WINDOW && Date.now() - stableSince > 1000 && Date.now() - started >= minMs) return;
    if (Date.now() - started > 240_000) throw new Error(`the window never filled: ${n} keys looked at`);
    await sleep(200);
  }
}

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 9 });
});
afterAll(async () => {
  await proxy?.stop();
  s3?.destroy();
});

describe('a stop never hangs (SeaweedFS through the fault proxy)', () => {
  it('abort while the window is full and the head object is in 503 backoff: returns in < 30 s; the resumed run finishes without double counting', async () => {
    const bucket = await createBucket(s3, 'stop');
    await putObjects(s3, bucket, [STUCK, ...others()]);
    proxy.setRule((r) =>
      r.bucket === bucket && r.key === STUCK && r.operation === 'HeadObject'
        ? { status: 503, code: 'ServiceUnavailable' }
        : undefined,
    );
    const stop = new AbortController();
    const progress: number[] = [];
    const run = runEngine(plan(bucket), {
      signal: stop.signal,
      progressIntervalMs: 200,
      onProgress: (p) => progress.push(p.counters.scanned),
    });
    await windowFull(bucket, 2000);
    const stoppedAt = Date.now();
    stop.abort();
    const result = await within(run, 30_000);
    proxy.setRule(undefined);
    expect(result, 'the run did not return within 30 s of the stop').not.toBe('hung');
    if (result === 'hung') return;
    expect(Date.now() - stoppedAt).toBeLessThan(30_000);
    expect(result.status).toBe('Stopped');
    // The stuck key heads the listing: nothing is under the checkpoint, yet the finished work was reported.
    expect(result.checkpoint).toBeUndefined();
    expect(result.committed.counters.scanned).toBe(0);
    expect(result.counters.scanned).toBeGreaterThanOrEqual(WINDOW - 1);
    expect(Math.max(...progress)).toBeGreaterThanOrEqual(WINDOW - 1);
    // Memory stays bounded: listing paused at the window, it did not run on to the end.
    expect(headedKeys(bucket).size).toBeLessThanOrEqual(WINDOW);
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: STUCK }))).ServerSideEncryption).toBeUndefined();

    // Resumed from what the stop saved (checkpoint + the counters under it): every key counted once.
    const resumed = await runEngine(plan(bucket, { ...(result.checkpoint ? { startAfter: result.checkpoint } : {}) }));
    expect(resumed.status).toBe('Complete');
    const total = result.committed.counters.scanned + resumed.counters.scanned;
    expect(total).toBe(OTHERS + 1);
    expect(result.committed.counters.encrypted + resumed.counters.encrypted + resumed.counters.alreadyEncrypted).toBe(
      OTHERS + 1,
    );
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: STUCK }))).ServerSideEncryption).toBe('AES256');
  }, 600_000);

  it('a fatal error (credentials revoked: InvalidAccessKeyId) while the window is full and the head is in backoff: Failed in < 30 s', async () => {
    const bucket = await createBucket(s3, 'fatal');
    await putObjects(s3, bucket, [STUCK, ...others()]);
    // The copy of a key near the window's end is refused as with revoked credentials, once listing filled the window.
    const fatalKey = `k/${String(WINDOW - 8).padStart(5, '0')}`;
    let refusedAt: number | undefined;
    // The refusal is answered just after a HEAD of the stuck key was answered: the stuck
    // key is then waiting out its engine backoff (at least 500 ms), not in a request.
    const stuckInBackoff = async (): Promise<void> => {
      const since = proxy.now();
      const answered = (): boolean =>
        proxy.requests.some(
          (x) => x.bucket === bucket && x.key === STUCK && x.operation === 'HeadObject' && (x.doneAt ?? -1) > since,
        );
      while (!answered()) await sleep(10);
      await sleep(100);
      refusedAt = Date.now();
    };
    proxy.setRule((r) => {
      if (r.bucket !== bucket) return undefined;
      if (r.key === STUCK && r.operation === 'HeadObject') return { status: 503, code: 'ServiceUnavailable' };
      if (r.key === fatalKey && r.operation === 'CopyObject') {
        return {
          status: 403,
          code: 'InvalidAccessKeyId',
          message: 'The AWS Access Key Id you provided does not exist in our records.',
          hold: stuckInBackoff(),
        };
      }
      return undefined;
    });
    // No SDK retries: each 503 of the stuck key goes straight to the engine's backoff.
    const clients = createClients(plan(bucket).connection, { maxAttempts: 1 });
    const result = await within(runEngine(plan(bucket), { clients }), 240_000).finally(() => clients.destroy());
    proxy.setRule(undefined);
    expect(result, 'the run did not return after its fatal error').not.toBe('hung');
    if (result === 'hung') return;
    expect(refusedAt).toBeDefined();
    expect(Date.now() - refusedAt!).toBeLessThan(30_000);
    // The fatal error came while the window was full (listing paused behind the stuck head).
    expect(headedKeys(bucket).size).toBeGreaterThanOrEqual(WINDOW - 16);
    expect(result.status).toBe('Failed');
    expect(result.reason).toBe('InvalidAccessKeyId');
    expect(result.retryable).toBe(false);
  }, 600_000);
});
