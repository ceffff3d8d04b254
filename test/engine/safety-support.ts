// Shared by the test/engine/safety-*.test.ts files (issue 9): a fault proxy in
// front of a real server, so another client's write lands exactly between two
// of the engine's requests, or an answer a server cannot be made to give is
// scripted; and helpers to read what a user sees afterwards.
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutBucketVersioningCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Plan } from '../../src/engine/index.js';
import type { S3Info } from '../harness/global-setup.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { connectionFor, enginePlan, uniqueName } from '../harness/context.js';

export async function proxyFor(endpoint: string): Promise<FaultProxy> {
  return startFaultProxy({ target: endpoint, protocol: 's3', seed: 1 });
}

/** An engine plan whose S3 requests go through `proxyUrl` (KMS goes straight to the server). */
export function proxiedPlan(
  info: S3Info,
  proxyUrl: string,
  bucket: string,
  target: Plan['target'],
  extra: Partial<Plan> = {},
  connection: Partial<Plan['connection']> = {},
): Plan {
  return enginePlan(info, bucket, target, {
    concurrency: 2,
    ...extra,
    connection: connectionFor(info, { endpoint: proxyUrl, ...connection }),
  });
}

export async function versionedBucket(s3: S3Client, prefix: string, objectLock = false): Promise<string> {
  const bucket = uniqueName(prefix);
  await s3.send(
    new CreateBucketCommand({ Bucket: bucket, ...(objectLock ? { ObjectLockEnabledForBucket: true } : {}) }),
  );
  if (!objectLock)
    await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  return bucket;
}

export async function bodyOf(s3: S3Client, Bucket: string, Key: string): Promise<string | undefined> {
  return (await s3.send(new GetObjectCommand({ Bucket, Key }))).Body?.transformToString();
}

export const headOf = (s3: S3Client, Bucket: string, Key: string, VersionId?: string) =>
  s3.send(new HeadObjectCommand({ Bucket, Key, VersionId }));

export function s3ErrorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>SAFETY</RequestId></Error>`;
}

/** A scripted S3 error answer for a fault-proxy hook. */
export function s3Error(
  status: number,
  code: string,
  message: string,
): { status: number; headers: Record<string, string>; body: string } {
  return {
    status,
    headers: { 'content-type': 'application/xml', 'x-amz-request-id': 'SAFETY' },
    body: s3ErrorXml(code, message),
  };
}
