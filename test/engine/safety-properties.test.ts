// Issue 9 scenarios 5 and 6 (review #5, #9): no property is dropped silently.
// A non-date Expires is resent as it was; an object whose lock state HEAD
// hides (no s3:GetObjectRetention / s3:GetObjectLegalHold) is read explicitly
// or fails; x-amz-missing-meta fails the object; an expired retention is not
// sent back and is reported. Servers: SeaweedFS (+ local-kms) and moto; the
// HEAD answers of a less privileged identity are scripted by the fault proxy.
import {
  GetObjectLegalHoldCommand,
  GetObjectRetentionCommand,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runEngine, type Outcome } from '../../src/engine/index.js';
import { createBucket, keyOf, s3Client, sleep } from '../harness/context.js';
import { hasGap } from '../harness/server-gaps.js';
import type { FaultProxy } from '../harness/fault-proxy.js';
import type { S3Info } from '../harness/global-setup.js';
import { headOf, proxiedPlan, proxyFor, s3Error, versionedBucket } from './safety-support.js';

const servers: [string, S3Info][] = [
  ['SeaweedFS', inject('seaweed')],
  ['moto', inject('moto')],
];

describe.each(servers)('%s', (_name, info) => {
  let s3: S3Client;
  let proxy: FaultProxy;
  const target = () => ({ type: 'aws:kms' as const, kmsKeyId: keyOf(info, 'alias/test-key-a').arn });
  beforeAll(async () => {
    s3 = s3Client(info);
    proxy = await proxyFor(info.s3Endpoint);
  });
  afterAll(async () => {
    s3.destroy();
    await proxy.stop();
  });
  async function run(bucket: string) {
    const outcomes = new Map<string, Outcome>();
    const result = await runEngine(proxiedPlan(info, proxy.url, bucket, target()), {
      onOutcome: (k, o) => outcomes.set(k, o),
    });
    return { result, outcomes };
  }

  it('an Expires that is not a date ("0") is resent exactly as it was', async () => {
    const bucket = await createBucket(s3, 'expires');
    const put = new PutObjectCommand({ Bucket: bucket, Key: 'e', Body: 'x' });
    put.middlewareStack.add(
      (next) => async (args) => {
        (args.request as { headers: Record<string, string> }).headers.expires = '0';
        return next(args);
      },
      { step: 'build', name: 'rawExpires' },
    );
    if (hasGap(info.kind, 'seaweedfs-expires-must-be-a-date')) {
      // Such an object cannot be written on SeaweedFS: nothing to carry over there.
      await expect(s3.send(put)).rejects.toThrow(/date/i);
      return;
    }
    await s3.send(put);
    expect((await headOf(s3, bucket, 'e')).ExpiresString).toBe('0');
    const { result } = await run(bucket);
    expect(result.counters).toMatchObject({ encrypted: 1, failed: 0 });
    const h = await headOf(s3, bucket, 'e');
    expect(h.ServerSideEncryption).toBe('aws:kms');
    expect(h.ExpiresString).toBe('0');
  });

  it('a HEAD with x-amz-missing-meta fails the object instead of dropping metadata', async () => {
    const bucket = await createBucket(s3, 'missing');
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'm', Body: 'x', Metadata: { a: '1' } }));
    const unhook = proxy.hook({
      match: (r) => r.bucket === bucket && r.operation === 'HeadObject',
      editHeaders: (h) => {
        h['x-amz-missing-meta'] = '2';
      },
    });
    try {
      const { result, outcomes } = await run(bucket);
      expect(result.counters).toMatchObject({ scanned: 1, encrypted: 0, failed: 1 });
      expect(outcomes.get('m')).toMatchObject({ kind: 'failed', failure: { code: 'MissingMetadata' } });
      expect((await headOf(s3, bucket, 'm')).ServerSideEncryption).toBeUndefined();
    } finally {
      unhook();
    }
  });

  async function lockedObject(prefix: string): Promise<{ bucket: string; until: Date }> {
    const bucket = await versionedBucket(s3, prefix, true);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'locked', Body: 'worm' }));
    const until = new Date(Date.now() + 3_600_000);
    until.setUTCMilliseconds(0);
    await s3.send(
      new PutObjectRetentionCommand({
        Bucket: bucket,
        Key: 'locked',
        Retention: { Mode: 'GOVERNANCE', RetainUntilDate: until },
      }),
    );
    await s3.send(new PutObjectLegalHoldCommand({ Bucket: bucket, Key: 'locked', LegalHold: { Status: 'ON' } }));
    return { bucket, until };
  }

  /** HEAD as an identity without s3:GetObjectRetention / s3:GetObjectLegalHold sees it: no lock headers. */
  function hideLockOnHead(bucket: string): () => void {
    return proxy.hook({
      match: (r) => r.bucket === bucket && r.operation === 'HeadObject',
      editHeaders: (h) => {
        for (const k of Object.keys(h)) if (k.startsWith('x-amz-object-lock-')) delete h[k];
      },
    });
  }

  it('object-lock bucket, HEAD hides the lock and reading it is denied: the object fails, it never becomes an unlocked current version', async () => {
    const { bucket } = await lockedObject('lock-denied');
    const before = await headOf(s3, bucket, 'locked');
    const unhide = hideLockOnHead(bucket);
    const unhook = proxy.hook({
      match: (r) =>
        r.bucket === bucket && (r.operation === 'GetObjectRetention' || r.operation === 'GetObjectLegalHold'),
      answer: () => s3Error(403, 'AccessDenied', 'Access Denied'),
    });
    try {
      const { result, outcomes } = await run(bucket);
      expect(result.counters).toMatchObject({ scanned: 1, encrypted: 0, failed: 1 });
      expect(outcomes.get('locked')).toMatchObject({ kind: 'failed', failure: { code: 'ObjectLockUnreadable' } });
      expect((outcomes.get('locked') as { failure: { message: string } }).failure.message).toMatch(
        /s3:GetObject(Retention|LegalHold)/,
      );
      const after = await headOf(s3, bucket, 'locked');
      expect(after.VersionId).toBe(before.VersionId);
    } finally {
      unhook();
      unhide();
    }
  });

  it('object-lock bucket, HEAD hides the lock but it can be read: the copy carries retention and legal hold over', async () => {
    const { bucket, until } = await lockedObject('lock-read');
    const before = await headOf(s3, bucket, 'locked');
    const unhide = hideLockOnHead(bucket);
    try {
      const { result, outcomes } = await run(bucket);
      if (hasGap(info.kind, 'moto-get-retention-returns-object')) {
        // moto's GetObjectRetention answer is unreadable: the object fails rather than lose its retention.
        expect(outcomes.get('locked')).toMatchObject({
          kind: 'failed',
          failure: { code: 'ObjectLockUnreadable', operation: 'GetObjectRetention' },
        });
        expect((await headOf(s3, bucket, 'locked')).VersionId).toBe(before.VersionId);
        return;
      }
      expect(result.recentFailures).toEqual([]);
      expect(result.counters).toMatchObject({ encrypted: 1 });
    } finally {
      unhide();
    }
    const h = await headOf(s3, bucket, 'locked');
    expect(h.ServerSideEncryption).toBe('aws:kms');
    const retention = await s3.send(new GetObjectRetentionCommand({ Bucket: bucket, Key: 'locked' }));
    expect(retention.Retention?.Mode).toBe('GOVERNANCE');
    expect(retention.Retention?.RetainUntilDate?.getTime()).toBe(until.getTime());
    expect((await s3.send(new GetObjectLegalHoldCommand({ Bucket: bucket, Key: 'locked' }))).LegalHold?.Status).toBe(
      'ON',
    );
  });

  it('an expired retention is not sent back: the object is re-encrypted and its expired retention reported', async () => {
    const bucket = await versionedBucket(s3, 'lock-expired', true);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'lapsed', Body: 'old enough' }));
    await s3.send(
      new PutObjectRetentionCommand({
        Bucket: bucket,
        Key: 'lapsed',
        Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(Date.now() + 2000) },
      }),
    );
    await sleep(3000);
    const { result, outcomes } = await run(bucket);
    expect(result.recentFailures).toEqual([]);
    const o = outcomes.get('lapsed');
    expect(o).toMatchObject({ kind: 'encrypted' });
    expect((o as { detail?: string }).detail).toMatch(/retention \(GOVERNANCE\) expired/);
    expect((await headOf(s3, bucket, 'lapsed')).ServerSideEncryption).toBe('aws:kms');
  });
});
