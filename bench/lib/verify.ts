// The check after every contender: each object under the prefix has the target
// encryption and key, and kept its Content-Type, Cache-Control, metadata, tags
// and size (and, on a sample, its bytes); objects outside the prefix are as they
// were. A contender that leaves objects wrong is reported as wrong.
import { createHash } from 'node:crypto';
import { GetObjectCommand, GetObjectTaggingCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ObjectSpec } from './datasets.js';

export interface Verdict {
  checked: number;
  /** Objects not at the target encryption / key. */
  notEncrypted: number;
  /** Objects whose properties (or bytes) changed. */
  changed: number;
  missing: number;
  /** Objects outside the prefix that were touched. */
  outsideTouched: number;
  examples: string[];
  /** What kind of loss was seen, and how often (e.g. "metadata", "tags", "Content-Type"). */
  losses: Record<string, number>;
}

export interface Target {
  sse: string;
  /** Key ARN and bare id: S3 servers report either. */
  kmsKeyIds: string[];
}

function same(a: Record<string, string>, b: Record<string, string>): boolean {
  const norm = (o: Record<string, string>): string =>
    JSON.stringify(Object.entries(o).sort(([x], [y]) => x.localeCompare(y)));
  return norm(a) === norm(b);
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let x = queue.shift(); x !== undefined; x = queue.shift()) await fn(x);
    }),
  );
}

export async function verify(
  s3: S3Client,
  bucket: string,
  inside: ObjectSpec[],
  outside: ObjectSpec[],
  target: Target,
  opts: { bodySample?: number } = {},
): Promise<Verdict> {
  const v: Verdict = {
    checked: 0,
    notEncrypted: 0,
    changed: 0,
    missing: 0,
    outsideTouched: 0,
    examples: [],
    losses: {},
  };
  const note = (kind: string, example: string): void => {
    v.losses[kind] = (v.losses[kind] ?? 0) + 1;
    if (v.examples.length < 8) v.examples.push(example);
  };
  await pool(inside, 32, async (o) => {
    v.checked++;
    let h;
    try {
      h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: o.key }));
    } catch {
      v.missing++;
      note('missing', `${o.key}: missing`);
      return;
    }
    if (
      h.ServerSideEncryption !== target.sse ||
      (target.kmsKeyIds.length > 0 && !target.kmsKeyIds.includes(h.SSEKMSKeyId ?? ''))
    ) {
      v.notEncrypted++;
      note('encryption', `${o.key}: ${h.ServerSideEncryption ?? 'none'} ${h.SSEKMSKeyId ?? ''}`);
    }
    const t = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: o.key }));
    const tags = Object.fromEntries((t.TagSet ?? []).map((x) => [x.Key ?? '', x.Value ?? '']));
    const problems: string[] = [];
    if (h.ContentType !== o.contentType) problems.push('Content-Type');
    if (h.CacheControl !== o.cacheControl) problems.push('Cache-Control');
    if (!same(h.Metadata ?? {}, o.metadata)) problems.push('metadata');
    if (!same(tags, o.tags)) problems.push('tags');
    if (h.ContentLength !== o.size) problems.push('size');
    if (problems.length > 0) {
      v.changed++;
      for (const p of problems) note(p, `${o.key}: lost ${p}`);
    }
  });
  // Bytes, on a sample that always includes the largest objects.
  const bySize = [...inside].sort((a, b) => b.size - a.size);
  const sample = [
    ...bySize.slice(0, 3),
    ...inside.filter((_, i) => i % Math.max(1, Math.floor(inside.length / (opts.bodySample ?? 20))) === 0),
  ];
  await pool([...new Set(sample)], 4, async (o) => {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.key })).catch(() => undefined);
    if (!got?.Body) return;
    const md5 = createHash('md5')
      .update(await got.Body.transformToByteArray())
      .digest('hex');
    if (md5 !== o.md5) {
      v.changed++;
      note('bytes', `${o.key}: bytes differ`);
    }
  });
  // Outside the prefix: untouched (still unencrypted, same properties), on a sample.
  const outSample = outside.filter(
    (_, i) => i % Math.max(1, Math.floor(outside.length / 200)) === 0 || i >= outside.length - 3,
  );
  await pool(outSample, 16, async (o) => {
    const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: o.key })).catch(() => undefined);
    if (!h || h.ServerSideEncryption || h.ContentType !== o.contentType || !same(h.Metadata ?? {}, o.metadata)) {
      v.outsideTouched++;
      note(
        'outside-prefix-touched',
        `${o.key}: outside the prefix, now ${h?.ServerSideEncryption ?? (h ? 'changed' : 'missing')}`,
      );
    }
  });
  return v;
}

export function verdictOk(v: Verdict): boolean {
  return v.notEncrypted === 0 && v.changed === 0 && v.missing === 0 && v.outsideTouched === 0;
}

export function verdictText(v: Verdict): string {
  if (verdictOk(v)) return 'ok';
  const parts = Object.entries(v.losses).map(([k, n]) => `${k} ${n}`);
  return `WRONG (${parts.join(', ')} of ${v.checked})`;
}
