// Fault drills: the engine against a real SeaweedFS (and a real local-kms)
// through test/harness/fault-proxy.ts, which answers some requests with 500 or
// 503 SlowDown, cuts connections mid-answer after the server did the work,
// delays others by seconds, throttles KMS, and takes the network away for 20 s.
//
// Each drill ends with the same checks: every object at the target encryption,
// every property kept (Content-Type, Cache-Control, metadata, tags, size),
// counters that add up with failed == 0, and no object written twice: a
// CopyObject of a key that had already been copied on the server may only be the
// SDK's retry of that same call (same invocation id), never a new one.
//
// The drills have a SeaweedFS of their own (its KMS calls go through a proxy to
// the shared local-kms), so faults never reach other test files. The target is
// AES256 or one KMS key (SeaweedFS cannot re-key KMS A -> B in place:
// server-gaps.ts seaweedfs-inplace-kms-rekey-is-noop); sources are unencrypted.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  runEngine,
  type Plan,
  type RequestEvent,
  type RunResult,
  type TargetEncryption,
} from '../../src/engine/index.js';
import { startFaultProxy, type FaultProxy, type FaultRates, type ProxiedRequest } from '../harness/fault-proxy.js';
import {
  auditCopies,
  countersAddUp,
  createBucketWith,
  observe,
  plainS3,
  propertyDiffs,
  startDrillSeaweed,
} from './support.js';

const shared = inject('seaweed');
const keyA = shared.keys.find((k) => k.alias === 'alias/test-key-a');
let weed: { s3Endpoint: string; stop(): Promise<void> };
let s3Proxy: FaultProxy;
let kmsProxy: FaultProxy;
let direct: S3Client;

beforeAll(async () => {
  const workDir = join(inject('workDir'), 'drills');
  mkdirSync(workDir, { recursive: true });
  kmsProxy = await startFaultProxy({ target: shared.kmsEndpoint, protocol: 'kms', seed: 7 });
  weed = await startDrillSeaweed({ workDir, kmsEndpoint: kmsProxy.url });
  s3Proxy = await startFaultProxy({ target: weed.s3Endpoint, protocol: 's3', seed: 42 });
  direct = plainS3(weed.s3Endpoint);
});

afterAll(async () => {
  direct?.destroy();
  await s3Proxy?.stop();
  await weed?.stop();
  await kmsProxy?.stop();
});

function keys(prefix: string, n: number): string[] {
  return Array.from(
    { length: n },
    (_, i) => `${prefix}/${String(i).padStart(5, '0')}${i % 10 === 0 ? ' with space+plus' : ''}`,
  );
}

interface Drill {
  result: RunResult;
  events: RequestEvent[];
  /** Proxy requests of this drill's bucket. */
  requests: ProxiedRequest[];
  seconds: number;
}

async function drill(
  bucket: string,
  objectKeys: string[],
  target: TargetEncryption,
  during?: () => Promise<void>,
): Promise<Drill> {
  const seeded = await createBucketWith(direct, bucket, objectKeys);
  const events: RequestEvent[] = [];
  const plan: Plan = {
    bucket,
    prefix: '',
    target,
    concurrency: 32,
    connection: {
      endpoint: s3Proxy.url,
      kmsEndpoint: kmsProxy.url,
      region: shared.region,
      forcePathStyle: true,
      credentials: { accessKeyId: shared.accessKeyId, secretAccessKey: shared.secretAccessKey },
    },
  };
  const from = s3Proxy.requests.length;
  const started = performance.now();
  running = true;
  const run = runEngine(plan, { observer: (e) => events.push(e) }).finally(() => (running = false));
  const [result] = await Promise.all([run, during?.()]);
  const seconds = (performance.now() - started) / 1000;
  const requests = s3Proxy.requests.slice(from).filter((r) => r.bucket === bucket);

  // The checks every drill ends with.
  expect(result.status, result.message).toBe('Complete');
  expect(result.recentFailures).toEqual([]);
  expect(result.counters).toMatchObject({ scanned: objectKeys.length, failed: 0, encrypted: objectKeys.length });
  expect(countersAddUp(result.counters)).toBe(true);
  const seen = await observe(direct, bucket, objectKeys);
  const wrong = [...seen].filter(([, o]) =>
    target.type === 'AES256'
      ? o.sse !== 'AES256'
      : o.sse !== target.type || ![keyA?.arn, keyA?.keyId].includes(o.kmsKeyId),
  );
  expect(wrong.map(([k, o]) => `${k}: ${o.sse} ${o.kmsKeyId ?? ''}`)).toEqual([]);
  expect(propertyDiffs(seeded, seen)).toEqual([]);
  const audit = auditCopies(requests, events, bucket);
  expect(audit.copiedAfterDone, 'keys copied again by a new call after they were done').toEqual([]);
  expect(audit.sent).toBeLessThanOrEqual(audit.sdkAttempts);
  for (const key of objectKeys) expect(audit.copiesPerKey.get(key) ?? 0, key).toBeGreaterThanOrEqual(1);
  return { result, events, requests, seconds };
}

function summary(name: string, d: Drill, extra: Record<string, unknown> = {}): void {
  const faults: Record<string, number> = {};
  for (const r of d.requests) faults[r.fault] = (faults[r.fault] ?? 0) + 1;
  console.log(
    `drill ${name}: ${d.result.counters.scanned} objects in ${d.seconds.toFixed(1)} s; ` +
      `proxy saw ${d.requests.length} requests, faults ${JSON.stringify(faults)}; ${JSON.stringify(extra)}`,
  );
}

/** The engine run of the current drill has not returned yet. */
let running = false;

/** Waits for `cond`; gives up quietly when the run is over (its checks then say what went wrong). */
async function until(cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond() && running) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const CHAOS: Partial<FaultRates> = {
  error500: 0.05,
  throttle: 0.05,
  resetMidResponse: 0.04,
  resetBeforeForward: 0.01,
  latency: 0.01,
  latencyMs: [1000, 4000],
};

describe('fault drills: engine -> fault proxy -> SeaweedFS (+ local-kms)', () => {
  it('5% 500, 5% SlowDown, resets mid-answer, latency spikes: everything at the target, nothing lost, nothing written twice', async () => {
    s3Proxy.setRates(CHAOS);
    let d: Drill;
    try {
      d = await drill('drill-chaos', keys('c', 150), { type: 'AES256' });
    } finally {
      s3Proxy.setRates({ ...CHAOS, error500: 0, throttle: 0, resetMidResponse: 0, resetBeforeForward: 0, latency: 0 });
    }
    // The drill really hit the case that matters: a copy the server made whose answer was lost.
    const lostCopies = d.requests.filter(
      (r) => r.operation === 'CopyObject' && r.fault === 'resetMidResponse' && r.upstreamStatus === 200,
    );
    expect(lostCopies.length).toBeGreaterThan(0);
    for (const f of ['error500', 'throttle', 'latency'] as const)
      expect(
        d.requests.some((r) => r.fault === f),
        f,
      ).toBe(true);
    // Throttled or failed calls show in the engine's request events as retried.
    expect(d.events.some((e) => e.attempts > 1)).toBe(true);
    summary('chaos', d, { lostCopyAnswers: lostCopies.length });
  });

  it('a burst of SlowDown makes the engine slow down: requests/s at the server drop while it lasts', async () => {
    const windows = { before: 0, during: 0, burstAt: 0 };
    const d = await drill('drill-slowdown', keys('s', 1200), { type: 'AES256' }, async () => {
      await until(
        () =>
          s3Proxy.requests.filter((r) => r.bucket === 'drill-slowdown' && r.operation === 'CopyObject').length >= 50,
      );
      await new Promise((r) => setTimeout(r, 1000));
      const burstAt = s3Proxy.now();
      s3Proxy.setRates({ throttle: 0.3 });
      await new Promise((r) => setTimeout(r, 4000));
      s3Proxy.setRates({ throttle: 0 });
      const mine = (r: ProxiedRequest): boolean => r.bucket === 'drill-slowdown';
      windows.burstAt = burstAt;
      windows.before = s3Proxy.rate(burstAt - 1000, burstAt, mine);
      windows.during = s3Proxy.rate(burstAt + 2000, burstAt + 4000, mine);
    });
    const throttled = d.events.filter((e) => e.throttled).length;
    summary('slowdown', d, {
      rps_before: Math.round(windows.before),
      rps_during_burst: Math.round(windows.during),
      throttledCalls: throttled,
    });
    expect(throttled).toBeGreaterThan(0);
    // Backing off: the second half of the burst sees well under half the rate before it.
    expect(windows.before).toBeGreaterThan(20);
    expect(windows.during).toBeLessThan(windows.before * 0.5);
  });

  it('KMS throttles (ThrottlingException, 400) behind SeaweedFS: every object ends under the KMS key', async () => {
    if (!keyA) throw new Error('alias/test-key-a is not seeded');
    const kmsOps = ['GenerateDataKey', 'Decrypt', 'Encrypt'];
    let d: Drill;
    const fromKms = kmsProxy.requests.length;
    try {
      // KMS throttles every call for the first 3 s (the engine's own DescribeKey), then
      // 60% of the data-key calls SeaweedFS makes, for 6 s from the first copy.
      kmsProxy.setRates({ throttle: 1, operations: undefined });
      d = await drill('drill-kms', keys('k', 300), { type: 'aws:kms', kmsKeyId: 'alias/test-key-a' }, async () => {
        await new Promise((r) => setTimeout(r, 3000));
        kmsProxy.setRates({ throttle: 0 });
        await until(() => s3Proxy.requests.some((r) => r.bucket === 'drill-kms' && r.operation === 'CopyObject'));
        kmsProxy.setRates({ throttle: 0.6, operations: kmsOps });
        await new Promise((r) => setTimeout(r, 6000));
        kmsProxy.setRates({ throttle: 0 });
      });
    } finally {
      kmsProxy.setRates({ throttle: 0, operations: undefined });
    }
    const kms = kmsProxy.requests.slice(fromKms);
    const throttledKms = kms.filter((r) => r.fault === 'throttle').length;
    expect(kms.some((r) => r.operation === 'DescribeKey' && r.fault === 'throttle')).toBe(true);
    expect(kms.filter((r) => r.operation === 'GenerateDataKey' && r.fault === 'throttle').length).toBeGreaterThan(20);
    // What SeaweedFS made of the throttled data-key calls it could not get through.
    const copyErrors: Record<string, number> = {};
    for (const r of d.requests)
      if (r.operation === 'CopyObject' && r.upstreamStatus !== 200)
        copyErrors[String(r.upstreamStatus)] = (copyErrors[String(r.upstreamStatus)] ?? 0) + 1;
    summary('kms-throttle', d, { kmsThrottled: throttledKms, kmsCalls: kms.length, copyErrorsFromSeaweed: copyErrors });
  });

  it('the network drops every packet for 20 s mid-run: the run waits and completes', async () => {
    let outage = { start: 0, end: 0 };
    const d = await drill('drill-drop', keys('d', 1000), { type: 'AES256' }, async () => {
      await until(
        () => s3Proxy.requests.filter((r) => r.bucket === 'drill-drop' && r.operation === 'CopyObject').length >= 100,
      );
      const start = s3Proxy.now();
      await s3Proxy.blackout({ mode: 'drop', ms: 20_000 });
      outage = { start, end: s3Proxy.now() };
    });
    // Requests sent during the outage get no answer until it is over. (Requests the proxy had forwarded
    // before it began may still be answered in its first moments: on a loaded machine that took 200 ms.)
    const answeredDuring = d.requests.filter(
      (r) => r.at > outage.start + 100 && r.doneAt !== undefined && r.doneAt < outage.end - 100,
    );
    expect(answeredDuring).toEqual([]);
    expect(d.seconds).toBeGreaterThan(20);
    summary('drop-20s', d, { held: d.requests.filter((r) => r.fault === 'blackout').length });
  });

  it('the server refuses every connection for 20 s mid-run: objects and listing are tried again, none fails', async () => {
    // The outage starts with the request for the second page of the listing (1100 keys = 2 pages).
    let lists = 0;
    const d = await drill('drill-refuse', keys('r', 1100), { type: 'AES256' }, () =>
      s3Proxy.blackoutOn(
        { mode: 'refuse', ms: 20_000 },
        (r) => r.bucket === 'drill-refuse' && r.operation === 'ListObjectsV2' && ++lists === 2,
      ),
    );
    const refused = d.requests.filter((r) => r.fault === 'blackout').length;
    expect(refused).toBeGreaterThan(0);
    // The listing was refused too, and went on after the outage (1500 keys = 2 pages).
    expect(d.requests.some((r) => r.operation === 'ListObjectsV2' && r.fault === 'blackout')).toBe(true);
    expect(d.requests.filter((r) => r.operation === 'ListObjectsV2' && r.status === 200).length).toBeGreaterThanOrEqual(
      2,
    );
    summary('refuse-20s', d, { refused, failedSdkCalls: d.events.filter((e) => e.error).length });
  });
});
