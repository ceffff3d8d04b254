// spec.maxObjects and spec.report on a sharded job (spec.parallelism above 1):
// maxObjects is one budget for the whole job, shared by the shards and kept
// across a suspend and resume; the report has one part per shard run and a
// manifest listing them all. Real apiserver + SeaweedFS through the fault proxy,
// so every copy is counted on the wire.
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import {
  createBucket,
  createCredentialsSecret,
  createNamespace,
  kubectl,
  putObjects,
  s3Client,
  waitUntil,
  type OperatorProcess,
  startOperator,
} from '../harness/context.js';
import { applyJob, copiesAt, waitForCondition } from '../harness/jobs.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;
let namespace: string;
let operator: OperatorProcess;

interface Job {
  spec: Record<string, unknown>;
  status?: {
    phase?: string;
    observedGeneration?: number;
    progress?: Record<string, number>;
    conditions?: { type: string; status: string; reason: string; message: string }[];
    shards?: {
      index: number;
      phase: string;
      progress?: Record<string, number>;
      checkpointProgress?: Record<string, number>;
      budgetHeld?: number;
    }[];
    report?: string;
    reportParts?: string[];
  };
}

const waitFor = (name: string, condition: string, timeout = 300): Promise<Job> =>
  waitForCondition<Job>(namespace, name, condition, { timeoutS: timeout, logs: () => operator.logTail(40) });

function apply(name: string, bucket: string, spec: Record<string, unknown>): Promise<void> {
  return applyJob(
    { name, namespace, bucket, encryption: { type: 'AES256' }, s3: { ...info, s3Endpoint: proxy.url } },
    { ...spec },
  );
}

async function patch(name: string, spec: Record<string, unknown>): Promise<void> {
  await kubectl(['patch', 'ej', name, '-n', namespace, '--type=merge', '-p', JSON.stringify({ spec })]);
}

/** Successful CopyObject requests per key, as the proxy saw them. */
const copies = (bucket: string): Map<string, number> => copiesAt(proxy, bucket);

async function text(uri: string): Promise<string> {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  const res = await s3.send(new GetObjectCommand({ Bucket: m![1], Key: m![2] }));
  return res.Body!.transformToString();
}

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 23 });
  namespace = await createNamespace('shardlimits');
  await createCredentialsSecret(namespace, info);
  operator = await startOperator({ watchNamespace: namespace });
});
afterAll(async () => {
  await operator?.stop();
  await proxy?.stop();
  s3?.destroy();
});

describe('maxObjects and report across shards (SeaweedFS through the fault proxy)', () => {
  it('parallelism 4, maxObjects 250, report: suspended and resumed, 250 objects in all, one report part per shard run', async () => {
    const bucket = await createBucket(s3, 'shardmax');
    // Skewed, so the shards are not all the same: 600 keys, most under one day.
    const keys = Array.from(
      { length: 600 },
      (_, i) => `logs/${i < 450 ? 'd5' : `d${i % 4}`}/${String(i).padStart(4, '0')}.json`,
    );
    await putObjects(s3, bucket, keys);
    proxy.setRule((r) => (r.bucket === bucket && r.operation === 'CopyObject' ? { delayMs: 40 } : undefined));
    try {
      await apply('maxrep', bucket, {
        prefix: 'logs/',
        parallelism: 4,
        concurrency: 2,
        maxObjects: 250,
        report: { destination: `s3://${bucket}/reports/run.csv`, all: true },
      });
      await waitUntil(
        'some objects copied',
        () => Promise.resolve(copies(bucket).size >= 60 ? true : undefined),
        240_000,
        () => operator.logTail(30),
      );
      await patch('maxrep', { suspend: true });
      const paused = await waitFor('maxrep', 'Suspended');
      expect(paused.status?.progress?.scanned ?? 0).toBeLessThan(250);
      // Each of the 4 shard runs wrote its part when it stopped; the job keeps only the manifest's address
      // (its size does not grow with the report), and the manifest lists the parts.
      expect(paused.status?.reportParts).toBeUndefined();
      expect((JSON.parse(await text(paused.status?.report ?? '')) as { parts: string[] }).parts).toHaveLength(4);
      // What the shards took above their checkpoints (in flight at the stop) stays theirs: never more than 250 in all.
      const shards = paused.status?.shards ?? [];
      const held = shards.reduce((a, s) => a + (s.budgetHeld ?? 0), 0);
      const under = shards.reduce((a, s) => a + (s.checkpointProgress?.scanned ?? 0), 0);
      expect(held, 'objects in flight at the stop are held').toBeGreaterThan(0);
      expect(held + under).toBeLessThanOrEqual(250);
    } finally {
      proxy.setRule(undefined);
    }
    await patch('maxrep', { suspend: false });
    const done = await waitFor('maxrep', 'Complete');
    const progress = done.status?.progress ?? {};
    expect(progress.scanned).toBe(250);
    expect((progress.encrypted ?? 0) + (progress.alreadyEncrypted ?? 0)).toBe(250);
    expect(done.status?.shards?.reduce((a, s) => a + (s.progress?.scanned ?? 0), 0)).toBe(250);
    expect(done.status?.shards?.filter((s) => s.budgetHeld !== undefined)).toEqual([]);
    expect(done.status?.conditions?.find((c) => c.type === 'Complete')?.message).toContain(
      'spec.maxObjects 250 reached',
    );
    // On the wire: 250 objects changed, each once; the other 350 never written.
    const seen = copies(bucket);
    expect([...seen.values()].filter((n) => n > 1)).toEqual([]);
    expect(seen.size).toBe(250);
    let atTarget = 0;
    for (const key of keys) {
      const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      if (h.ServerSideEncryption === 'AES256') atTarget++;
    }
    expect(atTarget).toBe(250);

    // The report: 4 parts before the suspend, 4 after (the resumed run read the earlier ones from the
    // manifest); the latest manifest lists all 8; together they name each of the 250 objects once.
    expect(done.status?.reportParts).toBeUndefined();
    const parts = (JSON.parse(await text(done.status?.report ?? '')) as { parts: string[] }).parts;
    expect(parts).toHaveLength(8);
    expect(new Set(parts).size).toBe(8);
    const rows: string[] = [];
    for (const part of parts) {
      const lines = (await text(part)).trim().split('\n');
      expect(lines[0]).toMatch(/^key,outcome/);
      rows.push(...lines.slice(1).map((l) => l.split(',')[0]!));
    }
    expect(rows).toHaveLength(250);
    expect(new Set(rows).size).toBe(250);
    expect(rows.filter((k) => !seen.has(k))).toEqual([]);
  }, 600_000);
});
