// Multipart copies and stops (issue 9, scenarios 3 and 11; review #12), on SeaweedFS
// (+ local-kms) through the fault proxy, with objects above a lowered multipart
// threshold (15 MiB objects, 5 MiB parts): a stop during the copy stops between
// parts and aborts the upload before the run returns; a run given the uploads an
// earlier run recorded aborts exactly those, never another client's upload.
import {
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { runEngine, type OpenUpload, type Plan } from '../../src/engine/index.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { connectionFor, createBucket, enginePlan, s3Client } from '../harness/context.js';

const info = inject('seaweed');
const MiB = 1024 * 1024;
let s3: S3Client;
let proxy: FaultProxy;

function plan(bucket: string, extra: Partial<Plan> = {}): Plan {
  return enginePlan(
    info,
    bucket,
    { type: 'AES256' },
    {
      connection: connectionFor(info, { endpoint: proxy.url }),
      multipartThreshold: 8 * MiB,
      multipartPartSize: 5 * MiB,
      concurrency: 1,
      ...extra,
    },
  );
}

async function openUploads(bucket: string): Promise<{ key: string; uploadId: string }[]> {
  const out = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (out.Uploads ?? []).map((u) => ({ key: u.Key ?? '', uploadId: u.UploadId ?? '' }));
}

const requestsFor = (bucket: string, operation: string): number =>
  proxy.requests.filter((r) => r.bucket === bucket && r.operation === operation).length;

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 11 });
});
afterAll(async () => {
  await proxy?.stop();
  s3?.destroy();
});

describe('multipart copies and stops (SeaweedFS through the fault proxy)', () => {
  it('a stop during a multipart copy stops between parts and aborts the upload before the run returns', async () => {
    const bucket = await createBucket(s3, 'mpstop');
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'big', Body: Buffer.alloc(15 * MiB + 1, 7) }));
    const stop = new AbortController();
    let parts = 0;
    let recorded: OpenUpload[] = [];
    // The second part copy is held for 2 s; the stop comes while it is in flight.
    proxy.setRule((r) => {
      if (r.bucket !== bucket || r.operation !== 'UploadPartCopy') return undefined;
      parts++;
      if (parts !== 2) return undefined;
      setTimeout(() => stop.abort(), 100);
      return { delayMs: 2000 };
    });
    const result = await runEngine(plan(bucket), {
      signal: stop.signal,
      recordUploads: (open) => {
        recorded = open;
      },
    });
    proxy.setRule(undefined);
    expect(result.status).toBe('Stopped');
    // The part in flight finished; no part after it was started, and the object was not completed.
    expect(requestsFor(bucket, 'UploadPartCopy')).toBe(2);
    expect(requestsFor(bucket, 'CompleteMultipartUpload')).toBe(0);
    expect(requestsFor(bucket, 'AbortMultipartUpload')).toBe(1);
    expect(await openUploads(bucket)).toEqual([]);
    // The object is left as it was, above the checkpoint, for a resumed run.
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big' }))).ServerSideEncryption).toBeUndefined();
    expect(result.counters).toMatchObject({ scanned: 0, failed: 0 });
    expect(result.checkpoint).toBeUndefined();
    expect(result.openUploads).toEqual([]);
    expect(recorded).toEqual([]);
  }, 120_000);

  it("the upload id is recorded before the first part is copied, and a run given it aborts it; another client's upload of the same key is left alone", async () => {
    const bucket = await createBucket(s3, 'mprec');
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'big', Body: Buffer.alloc(15 * MiB + 1, 3) }));
    // Another client's upload of the same key, started before our runs: not ours to abort.
    const theirs = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'big' }));
    // A run that dies after its upload was created: here, its first part copy never returns before the stop.
    let partsSeenWhenRecorded = -1;
    let recorded: OpenUpload[] = [];
    const stop = new AbortController();
    let release: () => void = () => undefined;
    proxy.setRule((r) =>
      r.bucket === bucket && r.operation === 'UploadPartCopy'
        ? { hold: new Promise<void>((resolve) => (release = resolve)) }
        : undefined,
    );
    const first = runEngine(plan(bucket), {
      signal: stop.signal,
      recordUploads: (open) => {
        if (open.length > 0 && partsSeenWhenRecorded < 0) {
          partsSeenWhenRecorded = requestsFor(bucket, 'UploadPartCopy');
          recorded = open;
        }
      },
    });
    while (requestsFor(bucket, 'UploadPartCopy') === 0) await new Promise((r) => setTimeout(r, 50));
    expect(partsSeenWhenRecorded).toBe(0);
    expect(recorded).toHaveLength(1);
    const ours = recorded[0]!;
    expect(ours.key).toBe('big');
    expect((await openUploads(bucket)).map((u) => u.uploadId).sort()).toEqual([ours.uploadId, theirs.UploadId].sort());
    // The first run is not let finish: as if the process had died, its upload stays open.
    // (Its held part is released only after the second run, and the proxy drops it then.)
    proxy.setRule(undefined);

    const second = await runEngine(plan(bucket, { abandonedUploads: recorded }));
    expect(second.status).toBe('Complete');
    expect(second.abortedUploads).toBe(1);
    expect(second.openUploads).toEqual([]);
    expect(second.counters).toMatchObject({ scanned: 1, encrypted: 1, failed: 0 });
    const left = await openUploads(bucket);
    expect(left.map((u) => u.uploadId)).toEqual([theirs.UploadId]);
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big' }))).ServerSideEncryption).toBe('AES256');

    stop.abort();
    release();
    await first;
  }, 180_000);

  it('maxOpenUploads bounds the multipart uploads open at once (a shard records at most that many)', async () => {
    const bucket = await createBucket(s3, 'mpslots');
    const keys = ['a', 'b', 'c', 'd', 'e'];
    for (const key of keys)
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.alloc(9 * MiB, 1) }));
    // Each part copy takes a while, so the uploads would overlap if nothing held them back.
    proxy.setRule((r) => (r.bucket === bucket && r.operation === 'UploadPartCopy' ? { delayMs: 300 } : undefined));
    let most = 0;
    const result = await runEngine(plan(bucket, { concurrency: 5, maxOpenUploads: 2 }), {
      recordUploads: (open) => {
        most = Math.max(most, open.length);
      },
    });
    proxy.setRule(undefined);
    expect(result.status).toBe('Complete');
    expect(result.counters).toMatchObject({ scanned: 5, encrypted: 5, failed: 0 });
    expect(most).toBe(2);
    expect(requestsFor(bucket, 'CompleteMultipartUpload')).toBe(5);
    expect(await openUploads(bucket)).toEqual([]);
    for (const key of keys)
      expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ServerSideEncryption).toBe('AES256');
  }, 120_000);
});
