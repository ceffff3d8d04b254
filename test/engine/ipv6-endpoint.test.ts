// IPv6 endpoints (issue 20, scenario 10; safety review m1): a SeaweedFS of this file's
// own, listening on ::1 only, reached as http://[::1]:PORT. The lean HEAD/CopyObject
// path must connect to the bare address, as the SDK does; before, every lean request
// asked DNS for "[::1]" (ENOTFOUND) while the SDK's HeadBucket and LIST worked.
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClients, leanOf } from '../../src/engine/s3/clients.js';
import { runEngine } from '../../src/engine/index.js';
import { connectionFor, createBucket, enginePlan, putObjects, s3Client } from '../harness/context.js';
import type { ManagedProcess } from '../harness/process.js';
import { startWeed } from '../harness/s3servers.js';

const info = inject('seaweed');
let weed: ManagedProcess | undefined;
let endpoint: string;
let s3: S3Client;

beforeAll(async () => {
  const started = await startWeed({
    workDir: mkdtempSync(join(inject('workDir'), 'seaweedfs-ipv6-')),
    kmsEndpoint: info.kmsEndpoint,
    name: 'seaweedfs-ipv6',
    ip: '::1',
  });
  weed = started.process;
  endpoint = started.s3Endpoint;
  s3 = s3Client({ ...info, s3Endpoint: endpoint });
}, 120_000);

afterAll(async () => {
  s3?.destroy();
  await weed?.stop();
});

describe('an IPv6 endpoint (SeaweedFS on ::1)', () => {
  it('scenario 10: IPv6 endpoints work on the lean path: a run over http://[::1]:PORT encrypts every object', async () => {
    expect(endpoint).toMatch(/^http:\/\/\[::1\]:\d+$/);
    const bucket = await createBucket(s3, 'ipv6');
    const keys = Array.from({ length: 20 }, (_, i) => `v6/${String(i).padStart(2, '0')}`);
    await putObjects(s3, bucket, keys);

    const connection = connectionFor(info, { endpoint });
    const clients = createClients(connection);
    try {
      // The objects go through the lean path, not the SDK's: that is the path under test.
      expect(await leanOf(clients.s3)?.available(bucket)).toBe(true);
      const result = await runEngine(enginePlan(info, bucket, { type: 'AES256' }, { connection }), { clients });
      expect(result.recentFailures).toEqual([]);
      expect(result.status).toBe('Complete');
      expect(result.counters).toMatchObject({ scanned: 20, encrypted: 20, failed: 0 });
    } finally {
      clients.destroy();
    }
    for (const key of keys) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      expect(head.ServerSideEncryption, key).toBe('AES256');
    }
  }, 180_000);
});
