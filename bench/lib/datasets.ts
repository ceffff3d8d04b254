// The benchmark's data sets, written the same way for every contender's fresh
// copy: deterministic keys, bodies, Content-Type, Cache-Control, metadata and
// tags, so the check afterwards knows exactly what each object must still be.
import { createHash } from 'node:crypto';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

export interface ObjectSpec {
  key: string;
  size: number;
  contentType: string;
  cacheControl: string;
  metadata: Record<string, string>;
  tags: Record<string, string>;
  md5: string;
  /** Byte the body is filled with (bodies are not stored: regenerated from it). */
  fill: number;
}

export interface DataSet {
  name: string;
  /** The prefix every contender is given. */
  prefix: string;
  objects: ObjectSpec[];
  /** Objects outside the prefix that must stay untouched (checked on a sample). */
  outside: ObjectSpec[];
  description: string;
}

const MiB = 1024 * 1024;

function spec(key: string, size: number, i: number): ObjectSpec {
  const fill = (i * 7 + 13) % 251;
  return {
    key,
    size,
    contentType: ['application/json', 'text/csv; charset=utf-8', 'image/png', 'application/octet-stream'][
      i % 4
    ] as string,
    cacheControl: `max-age=${100 + (i % 900)}`,
    metadata: { origin: `bench-${i % 13}`, idx: String(i) },
    tags: { set: 'bench', shard: String(i % 5) },
    md5: createHash('md5').update(Buffer.alloc(size, fill)).digest('hex'),
    fill,
  };
}

const pad = (i: number): string => String(i).padStart(7, '0');

export function smallSet(count: number, size = 4096): DataSet {
  return {
    name: `small-${count}x${size / 1024}KiB`,
    prefix: 'small/',
    objects: Array.from({ length: count }, (_, i) => spec(`small/${pad(i)}.dat`, size, i)),
    outside: [],
    description: `${count} objects of ${size / 1024} KiB`,
  };
}

/** The small set behind a proxy that adds `latencyMs` to every request (bench/run.ts). */
export function latencySet(count: number, latencyMs: number): DataSet {
  const set = smallSet(count);
  return {
    ...set,
    name: `latency-${count}x4KiB-${latencyMs}ms`,
    description: `${set.description}, ${latencyMs} ms added to every S3 request`,
  };
}

/** 0 B to 64 MiB; the large ones are above the multipart threshold the benchmark gives our engine. */
export function mixedSet(count: number): DataSet {
  // Mostly small, a few large: one cycle of 20 holds 107 MiB.
  const K = 1024;
  const cycle = [
    0,
    100,
    4 * K,
    4 * K,
    64 * K,
    100,
    4 * K,
    64 * K,
    512 * K,
    MiB,
    4 * K,
    100,
    MiB,
    4 * MiB,
    12 * MiB,
    64 * K,
    4 * K,
    24 * MiB,
    100,
    64 * MiB,
  ];
  const plan = Array.from({ length: count }, (_, i) => cycle[i % cycle.length] as number);
  return {
    name: `mixed-${count}`,
    prefix: 'mixed/',
    objects: plan.map((size, i) => spec(`mixed/${pad(i)}-${size}.bin`, size, i)),
    outside: [],
    description: `${count} objects from 0 B to 64 MiB (${(plan.reduce((a, b) => a + b, 0) / MiB).toFixed(0)} MiB in all)`,
  };
}

/** One big prefix next to the one the contenders are given: they must list and touch only theirs. */
export function skewSet(hot: number, cold: number): DataSet {
  return {
    name: `skew-${cold}of${hot + cold}`,
    prefix: 'logs/cold/',
    objects: Array.from({ length: cold }, (_, i) => spec(`logs/cold/${pad(i)}.dat`, 1024, i)),
    outside: [
      ...Array.from({ length: hot }, (_, i) => spec(`logs/hot/${pad(i)}.dat`, 1024, i + cold)),
      // Right next to the prefix in key order. (Not "logs/cold" itself: SeaweedFS, a file
      // system, cannot hold a file and a directory of the same name.)
      spec('logs/cold-archive/x.dat', 10, 2),
      spec('logs/coldx', 10, 3),
    ],
    description: `prefix logs/cold/ with ${cold} objects beside logs/hot/ with ${hot}`,
  };
}

export async function putAll(s3: S3Client, bucket: string, objects: ObjectSpec[], concurrency = 64): Promise<void> {
  const queue = [...objects];
  const worker = async (): Promise<void> => {
    for (let o = queue.shift(); o; o = queue.shift()) {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: o.key,
          Body: Buffer.alloc(o.size, o.fill),
          ContentType: o.contentType,
          CacheControl: o.cacheControl,
          Metadata: o.metadata,
          Tagging: new URLSearchParams(o.tags).toString(),
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

export async function createCopy(s3: S3Client, bucket: string, set: DataSet): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await putAll(s3, bucket, [...set.objects, ...set.outside]);
}

/** Empties and deletes a bucket: SeaweedFS gives each bucket its own volumes, and `weed mini` has few. */
export async function deleteBucketDeep(s3: S3Client, bucket: string): Promise<void> {
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    const keys = (page.Contents ?? []).map((c) => ({ Key: c.Key ?? '' }));
    if (keys.length > 0)
      await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
}
