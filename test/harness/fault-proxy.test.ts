// The fault proxy's throttling answers are S3's own: `503 Slow Down` with a
// SlowDown error body, and for a HEAD (no body) the status line alone, which is
// what S3 sends (it has no error-code header for HEAD either). What the SDK
// makes of the HEAD one (no code: named by status) is what the engine meets on
// AWS, and the engine takes it as transient. SeaweedFS behind the proxy.
import { request } from 'node:http';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { isTransient } from '../../src/engine/s3/errors.js';
import { createBucket, putObjects, s3Client } from './context.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';

const info = inject('seaweed');
let s3: S3Client;
let proxied: S3Client;
let proxy: FaultProxy;
let bucket: string;

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({
    target: info.s3Endpoint,
    protocol: 's3',
    seed: 3,
    rates: { throttle: 1, operations: ['HeadObject', 'GetObject'] },
  });
  // One attempt: the answer itself, not the SDK's retries of it.
  proxied = new S3Client({
    endpoint: proxy.url,
    region: info.region,
    forcePathStyle: true,
    credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey },
    maxAttempts: 1,
  });
  bucket = await createBucket(s3, 'throttle');
  await putObjects(s3, bucket, ['k']);
});
afterAll(async () => {
  s3?.destroy();
  proxied?.destroy();
  await proxy?.stop();
});

/** An unsigned raw request: the proxy answers a throttle before forwarding, so the signature is never checked. */
function raw(method: string): Promise<{ status?: number; message?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(`${proxy.url}/${bucket}/k`);
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode, message: res.statusMessage, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('fault proxy throttling answers (SeaweedFS behind it)', () => {
  it('GET: 503 Slow Down with a SlowDown error body', async () => {
    const get = await raw('GET');
    expect(get).toMatchObject({ status: 503, message: 'Slow Down' });
    expect(get.body).toContain('<Code>SlowDown</Code>');
    const err = await proxied.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' })).catch((e: unknown) => e);
    expect((err as { name: string }).name).toBe('SlowDown');
  });

  it('HEAD: the status line 503 Slow Down only; the SDK names it by status, and the engine rides it out as transient', async () => {
    const head = await raw('HEAD');
    expect(head).toEqual({ status: 503, message: 'Slow Down', body: '' });
    const err: unknown = await proxied
      .send(new HeadObjectCommand({ Bucket: bucket, Key: 'k' }))
      .catch((e: unknown) => e);
    const e = err as { name: string; $metadata: { httpStatusCode?: number } };
    expect(e.$metadata.httpStatusCode).toBe(503);
    expect(e.name).not.toBe('SlowDown');
    expect(isTransient(err, 8)).toBe(true);
  });
});
