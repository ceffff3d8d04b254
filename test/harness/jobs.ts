// What the controller tests ask of an EncryptionJob and of the S3 fault proxy in
// front of the operator: apply the job, read it, wait for one of its conditions the way a
// user would (kubectl wait), and count the copies that reached the server.
import { expect } from 'vitest';
import { jobYaml, kubectl, type JobManifest } from './context.js';
import type { FaultProxy } from './fault-proxy.js';
import type { EncryptionJob, EncryptionShard } from '../../src/controller/api.js';
import { jobLabelValue, SHARD_JOB_LABEL, shardOwnedBy, toShardStatus } from '../../src/controller/shardstore.js';

/** Applies the job `jobYaml` makes, with `spec` merged over its spec (the fields jobYaml has no option for). */
export async function applyJob(j: JobManifest, spec: Record<string, unknown> = {}): Promise<void> {
  const manifest = JSON.parse(jobYaml(j)) as { spec: Record<string, unknown> };
  manifest.spec = { ...manifest.spec, ...spec };
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
}

/**
 * The job, with its shards as a user sees them (`kubectl get eshard -l s3encryption.dev/job=NAME`):
 * the job's own EncryptionShard objects, in index order, put in status.shards (status.dryRunShards
 * for a dry run's) so the tests read each range where they always did. A job whose status still has
 * the list (an operator before shard objects) keeps it.
 */
export async function readJob<T>(namespace: string, name: string): Promise<T> {
  const out = await kubectl(['get', 'encryptionjob', name, '-n', namespace, '-o', 'json']);
  const job = JSON.parse(out.stdout) as EncryptionJob;
  const objects = await shardObjects(namespace, job);
  const status = job.status ?? {};
  for (const dry of [false, true]) {
    const mine = objects.filter((o) => (o.spec.dryRun ?? false) === dry);
    if (mine.length === 0 || ((dry ? status.dryRunShards : status.shards)?.length ?? 0) > 0) continue;
    const shards = mine.sort((a, b) => a.spec.index - b.spec.index).map(toShardStatus);
    job.status = { ...job.status, ...(dry ? { dryRunShards: shards } : { shards }) };
  }
  return job as T;
}

/** The job's own EncryptionShard objects (by its label and owner uid). */
export async function shardObjects(namespace: string, job: EncryptionJob): Promise<EncryptionShard[]> {
  const selector = `${SHARD_JOB_LABEL}=${jobLabelValue(job.metadata?.name ?? '')}`;
  const out = await kubectl(['get', 'encryptionshards', '-n', namespace, '-l', selector, '-o', 'json']);
  const items = (JSON.parse(out.stdout) as { items: EncryptionShard[] }).items;
  return items.filter((o) => shardOwnedBy(o, job));
}

/** Waits for the condition; on a timeout fails with the job's status and `logs()` (the operator's log tail). */
export async function waitForCondition<T extends { status?: unknown }>(
  namespace: string,
  name: string,
  condition: string,
  opts: { timeoutS?: number; logs?: () => string } = {},
): Promise<T> {
  const res = await kubectl(
    ['wait', `--for=condition=${condition}`, `--timeout=${opts.timeoutS ?? 240}s`, '-n', namespace, `ej/${name}`],
    { allowFailure: true },
  );
  const j = await readJob<T>(namespace, name);
  if (res.code !== 0)
    throw new Error(`ej/${name} not ${condition}: ${JSON.stringify(j.status)}\n${opts.logs?.() ?? ''}`);
  return j;
}

/** Successful CopyObject requests per key of the bucket, as the proxy saw them. */
export function copiesAt(proxy: FaultProxy, bucket: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of proxy.requests) {
    if (r.bucket !== bucket || r.operation !== 'CopyObject' || r.key === undefined || r.upstreamStatus !== 200)
      continue;
    out.set(r.key, (out.get(r.key) ?? 0) + 1);
  }
  return out;
}

/** Every key written exactly once on the wire: none twice, none missed, nothing else. */
export function expectEachKeyCopiedOnce(proxy: FaultProxy, bucket: string, keys: string[]): void {
  const seen = copiesAt(proxy, bucket);
  expect(
    [...seen.entries()].filter(([, n]) => n > 1),
    'keys written more than once',
  ).toEqual([]);
  expect(
    keys.filter((k) => !seen.has(k)),
    'keys never written',
  ).toEqual([]);
  expect(seen.size).toBe(keys.length);
}
