// What the controller tests ask of an EncryptionJob and of the S3 fault proxy in
// front of the operator: apply the job, read it, wait for one of its conditions the way a
// user would (kubectl wait), and count the copies that reached the server.
import { expect } from 'vitest';
import { jobYaml, kubectl, type JobManifest } from './context.js';
import type { FaultProxy } from './fault-proxy.js';

/** Applies the job `jobYaml` makes, with `spec` merged over its spec (the fields jobYaml has no option for). */
export async function applyJob(j: JobManifest, spec: Record<string, unknown> = {}): Promise<void> {
  const manifest = JSON.parse(jobYaml(j)) as { spec: Record<string, unknown> };
  manifest.spec = { ...manifest.spec, ...spec };
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
}

export async function readJob<T>(namespace: string, name: string): Promise<T> {
  const out = await kubectl(['get', 'encryptionjob', name, '-n', namespace, '-o', 'json']);
  return JSON.parse(out.stdout) as T;
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
