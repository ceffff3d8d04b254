// What the fault drills share: a SeaweedFS of their own whose KMS calls go
// through a fault proxy, objects with every property a copy could lose, a
// snapshot of those properties, and the checks every drill ends with.
import {
  CreateBucketCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { ProxiedRequest } from '../harness/fault-proxy.js';
import { startWeed, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY } from '../harness/s3servers.js';
import type { Counters, RequestEvent } from '../../src/engine/index.js';

export const REGION = 'us-east-1';

export function plainS3(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: TEST_ACCESS_KEY_ID, secretAccessKey: TEST_SECRET_ACCESS_KEY },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** `weed mini` with its KMS provider behind `kmsEndpoint` (a fault proxy in front of local-kms). */
export async function startDrillSeaweed(opts: {
  workDir: string;
  kmsEndpoint: string;
}): Promise<{ s3Endpoint: string; stop(): Promise<void> }> {
  const { s3Endpoint, process } = await startWeed({ ...opts, name: 'seaweedfs-drill' });
  return { s3Endpoint, stop: () => process.stop() };
}

export interface Seeded {
  contentType: string;
  cacheControl: string;
  metadata: Record<string, string>;
  tags: Record<string, string>;
  size: number;
}

/** What a test object is given: properties that differ per key, so a mix-up shows. */
export function seededProperties(key: string, i: number): Seeded {
  return {
    contentType: i % 3 === 0 ? 'application/json' : i % 3 === 1 ? 'text/csv; charset=utf-8' : 'image/png',
    cacheControl: `max-age=${60 + i}`,
    metadata: { owner: `team-${i % 7}`, 'source-key': encodeURIComponent(key) },
    tags: { drill: 'yes', n: String(i) },
    size: 100 + (i % 50) * 37,
  };
}

export async function createBucketWith(s3: S3Client, bucket: string, keys: string[]): Promise<Map<string, Seeded>> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const seeded = new Map<string, Seeded>();
  const queue = keys.map((k, i) => [k, i] as const);
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const [key, i] = next;
      const p = seededProperties(key, i);
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: Buffer.alloc(p.size, i % 251),
          ContentType: p.contentType,
          CacheControl: p.cacheControl,
          Metadata: p.metadata,
          Tagging: new URLSearchParams(p.tags).toString(),
        }),
      );
      seeded.set(key, p);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return seeded;
}

export interface Observed {
  sse?: string;
  kmsKeyId?: string;
  contentType?: string;
  cacheControl?: string;
  metadata: Record<string, string>;
  tags: Record<string, string>;
  size: number;
}

export async function observe(s3: S3Client, bucket: string, keys: string[]): Promise<Map<string, Observed>> {
  const out = new Map<string, Observed>();
  const queue = [...keys];
  const worker = async (): Promise<void> => {
    for (let key = queue.shift(); key !== undefined; key = queue.shift()) {
      const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      const t = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
      out.set(key, {
        ...(h.ServerSideEncryption ? { sse: h.ServerSideEncryption } : {}),
        ...(h.SSEKMSKeyId ? { kmsKeyId: h.SSEKMSKeyId } : {}),
        ...(h.ContentType ? { contentType: h.ContentType } : {}),
        ...(h.CacheControl ? { cacheControl: h.CacheControl } : {}),
        metadata: h.Metadata ?? {},
        tags: Object.fromEntries((t.TagSet ?? []).map((x) => [x.Key ?? '', x.Value ?? ''])),
        size: h.ContentLength ?? -1,
      });
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return out;
}

/** Every difference between what was seeded and what is there now, besides the encryption. */
export function propertyDiffs(seeded: Map<string, Seeded>, seen: Map<string, Observed>): string[] {
  const diffs: string[] = [];
  for (const [key, want] of seeded) {
    const got = seen.get(key);
    if (!got) {
      diffs.push(`${key}: missing`);
      continue;
    }
    if (got.contentType !== want.contentType)
      diffs.push(`${key}: Content-Type ${got.contentType} != ${want.contentType}`);
    if (got.cacheControl !== want.cacheControl)
      diffs.push(`${key}: Cache-Control ${got.cacheControl} != ${want.cacheControl}`);
    if (
      JSON.stringify(got.metadata) !== JSON.stringify(sorted(want.metadata)) &&
      JSON.stringify(sorted(got.metadata)) !== JSON.stringify(sorted(want.metadata))
    ) {
      diffs.push(`${key}: metadata ${JSON.stringify(got.metadata)} != ${JSON.stringify(want.metadata)}`);
    }
    if (JSON.stringify(sorted(got.tags)) !== JSON.stringify(sorted(want.tags)))
      diffs.push(`${key}: tags ${JSON.stringify(got.tags)} != ${JSON.stringify(want.tags)}`);
    if (got.size !== want.size) diffs.push(`${key}: size ${got.size} != ${want.size}`);
  }
  return diffs;
}

function sorted(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}

export function countersAddUp(c: Counters): boolean {
  return c.scanned === c.encrypted + c.alreadyEncrypted + c.skipped + c.failed;
}

export interface CopyAudit {
  /** CopyObject requests per key that reached the server. */
  copiesPerKey: Map<string, number>;
  /** SDK calls (invocation ids) per key: 1 unless the engine had to look at the object again. */
  callsPerKey: Map<string, number>;
  /** Keys copied again by a new SDK call after a copy of them had already succeeded on the server. */
  copiedAfterDone: string[];
  /** CopyObject requests the proxy saw, and the attempts the SDK reported for its CopyObject calls. */
  sent: number;
  sdkAttempts: number;
  maxCopiesOfOneKey: number;
}

/**
 * Writes at the server against what the engine asked for. A CopyObject that
 * succeeded on the server may be sent again only as a retry of the same SDK call
 * (same amz-sdk-invocation-id): the SDK could not know it had succeeded. A new
 * call for a key already written is a second write, and a bug.
 */
export function auditCopies(
  requests: readonly ProxiedRequest[],
  events: readonly RequestEvent[],
  bucket: string,
  writeOp = 'CopyObject',
): CopyAudit {
  const copies = requests.filter((r) => r.operation === writeOp && r.bucket === bucket && r.key !== undefined);
  const copiesPerKey = new Map<string, number>();
  const calls = new Map<string, Set<string>>();
  const doneBy = new Map<string, string | undefined>();
  const copiedAfterDone = new Set<string>();
  for (const r of [...copies].sort((a, b) => a.at - b.at)) {
    const key = r.key as string;
    (calls.get(key) ?? calls.set(key, new Set()).get(key))?.add(r.invocationId ?? `?${r.at}`);
    if (r.upstreamStatus === undefined) continue;
    copiesPerKey.set(key, (copiesPerKey.get(key) ?? 0) + 1);
    if (doneBy.has(key) && doneBy.get(key) !== r.invocationId) copiedAfterDone.add(key);
    if (r.upstreamStatus === 200 && !doneBy.has(key)) doneBy.set(key, r.invocationId);
  }
  const sdkAttempts = events
    .filter((e) => e.service === 's3' && e.operation === writeOp)
    .reduce((n, e) => n + e.attempts, 0);
  return {
    copiesPerKey,
    callsPerKey: new Map([...calls].map(([k, v]) => [k, v.size])),
    copiedAfterDone: [...copiedAfterDone].sort(),
    sent: copies.length,
    sdkAttempts,
    maxCopiesOfOneKey: Math.max(0, ...copiesPerKey.values()),
  };
}
