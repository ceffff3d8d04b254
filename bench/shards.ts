// Sharded runs (issue 11): the same object set re-encrypted (to SSE-S3) with
// 1, 2 and 4 shards side by side, the way the operator runs spec.parallelism in
// its own process: one cheap sampling pass plans the shards (sampleKeys ->
// planShards, with the operator's LIST budget), then one engine run per shard
// `(startAfter, endAt]`, all at once, each with the same concurrency. Every S3
// request goes through a fault proxy (a process of its own) that adds a fixed
// latency, so requests, not the shared CPU, bound the run: more shards, more
// requests in flight, more objects per second.
//
// Two sets: "uniform" (keys spread evenly) and "skew" (90% of the keys under one
// date prefix, hash-like names, the shape a date-partitioned bucket has). For
// each run: objects/s, every shard's objects and wall time, and the
// slowest-shard / mean-shard time ratio (issue 11 target on the skew set: <= 1.5).
// Every run must end with every object encrypted and none failed.
//
//   bash test/env/node.sh npx tsx bench/shards.ts [--objects 10000] [--shards 1,2,4]
//        [--concurrency 8] [--latency-ms 20] [--sets uniform,skew]
//
// Writes bench/results/shards-<date>.json and prints a table.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { runEngine, type Connection, type Plan, type RunResult } from '../src/engine/index.js';
import { planShards, sampleKeys } from '../src/engine/keys/shards.js';
import { startSeaweed, type S3Env } from '../test/harness/s3servers.js';
import { toolPath } from '../test/harness/process.js';
import { deleteBucketDeep } from './lib/datasets.js';
import { ROOT } from './lib/contenders.js';
// The operator's sampling budget, so the bench plans as the operator does.
import {
  SAMPLE_REQUESTS_MIN,
  SAMPLE_REQUESTS_PER_SHARD,
  SAMPLE_REQUESTS_PER_SUB_PREFIX,
} from '../src/controller/shardplan.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2)
  args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const config = {
  objects: Number(args.get('objects') ?? 10_000),
  shards: (args.get('shards') ?? '1,2,4').split(',').map(Number),
  concurrency: Number(args.get('concurrency') ?? 8),
  latencyMs: Number(args.get('latency-ms') ?? 20),
  sets: (args.get('sets') ?? 'uniform,skew,skew30').split(',') as SetName[],
  target: 'AES256' as const,
};

const log = (msg: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);

/** Deterministic hash-like names, so every run of a set has the same keys. */
const hex = (i: number): string => createHash('sha256').update(String(i)).digest('hex').slice(0, 16);

type SetName = 'uniform' | 'skew' | 'skew30';

/**
 * uniform: hash-like names under one prefix. skew: 10 date prefixes, 90% of the
 * keys under the 5th (the shape of the operator's shard tests). skew30: 30 date
 * prefixes, 90% under the last: more sub-prefixes than the sampling pass has
 * LIST requests for 2 or 4 shards.
 */
function keysOf(set: SetName, n: number): string[] {
  if (set === 'uniform') return Array.from({ length: n }, (_, i) => `data/${hex(i)}.json`);
  const days = set === 'skew' ? 10 : 30;
  const hot = set === 'skew' ? 5 : 30;
  const cold = Array.from({ length: days }, (_, d) => d + 1).filter((d) => d !== hot);
  return Array.from({ length: n }, (_, i) => {
    const day = i % 10 === 0 ? cold[Math.floor(i / 10) % cold.length]! : hot;
    return `logs/2026-11-${String(day).padStart(2, '0')}/${hex(i)}.json`;
  });
}

async function putKeys(s3: S3Client, bucket: string, keys: string[]): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const queue = [...keys];
  const body = Buffer.alloc(1024, 7);
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      for (let key = queue.shift(); key !== undefined; key = queue.shift())
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/json' }));
    }),
  );
}

async function startProxy(target: string, latencyMs: number): Promise<{ url: string; child: ChildProcess }> {
  // The same loader this process runs under (tsx), so the child can run TypeScript.
  const child = spawn(
    process.execPath,
    [...process.execArgv, join(ROOT, 'bench', 'lib', 'latency-proxy.ts'), target, String(latencyMs)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`latency proxy exited ${code}`)));
  });
  return { url, child };
}

interface ShardRow {
  index: number;
  startAfter: string;
  endAt?: string;
  objects: number;
  seconds: number;
  status: string;
}

interface Row {
  set: string;
  shards: number;
  planned: number;
  objects: number;
  planSeconds: number;
  runSeconds: number;
  totalSeconds: number;
  objectsPerSecond: number;
  slowestOverMeanShard: number;
  largestOverMeanShard: number;
  requests: Record<string, number>;
  /** The machine's 1-minute load average when the run ended (2 cores: above 2, the CPU is the bound). */
  loadAverage1m: number;
  ok: boolean;
  problems: string[];
  shardRows: ShardRow[];
}

function client(env: S3Env, endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: env.region,
    forcePathStyle: true,
    credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
  });
}

async function measure(env: S3Env, direct: S3Client, proxyUrl: string, set: SetName, shardCount: number): Promise<Row> {
  const bucket = `shards-${set}-${shardCount}-${Date.now().toString(36)}`;
  const keys = keysOf(set, config.objects);
  log(`${set} x${shardCount}: putting ${keys.length} objects into ${bucket}`);
  await putKeys(direct, bucket, keys);
  const connection: Connection = {
    endpoint: proxyUrl,
    region: env.region,
    forcePathStyle: true,
    credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
  };
  const proxied = client(env, proxyUrl);
  const started = performance.now();
  // Planning as the operator does it (a single shard needs no plan).
  const sample =
    shardCount > 1
      ? await sampleKeys(proxied, {
          bucket,
          prefix: '',
          maxRequests: Math.max(SAMPLE_REQUESTS_MIN, SAMPLE_REQUESTS_PER_SHARD * shardCount),
          requestsPerSubPrefix: SAMPLE_REQUESTS_PER_SUB_PREFIX,
        })
      : undefined;
  const shards = sample ? planShards(sample.keys, shardCount) : [{ index: 0, startAfter: '' }];
  proxied.destroy();
  const planned = performance.now();
  log(`${set} x${shardCount}: ${shards.length} shards planned in ${((planned - started) / 1000).toFixed(1)} s`);
  const results = await Promise.all(
    shards.map(async (shard) => {
      const plan: Plan = {
        bucket,
        prefix: '',
        target: { type: config.target },
        connection,
        concurrency: config.concurrency,
        ...(shard.startAfter ? { startAfter: shard.startAfter, shardStartAfter: shard.startAfter } : {}),
        ...(shard.endAt !== undefined ? { endAt: shard.endAt } : {}),
      };
      const t0 = performance.now();
      const result: RunResult = await runEngine(plan);
      return { shard, result, seconds: (performance.now() - t0) / 1000 };
    }),
  );
  const ended = performance.now();
  const objects = results.reduce((a, r) => a + r.result.counters.scanned, 0);
  const encrypted = results.reduce((a, r) => a + r.result.counters.encrypted, 0);
  const problems: string[] = [];
  for (const r of results) {
    if (r.result.status !== 'Complete')
      problems.push(`shard ${r.shard.index}: ${r.result.status} ${r.result.reason ?? ''} ${r.result.message ?? ''}`);
    if (r.result.counters.failed > 0) problems.push(`shard ${r.shard.index}: ${r.result.counters.failed} failed`);
  }
  if (objects !== keys.length) problems.push(`scanned ${objects} of ${keys.length}`);
  if (encrypted !== keys.length) problems.push(`encrypted ${encrypted} of ${keys.length}`);
  // A sample of the objects, read back without the proxy.
  for (let i = 0; i < keys.length; i += Math.max(1, Math.floor(keys.length / 200))) {
    const h = await direct.send(new HeadObjectCommand({ Bucket: bucket, Key: keys[i] }));
    if (h.ServerSideEncryption !== config.target)
      problems.push(`${keys[i]} is ${h.ServerSideEncryption ?? 'unencrypted'}`);
  }
  const requests: Record<string, number> = {};
  for (const r of results)
    for (const [op, n] of Object.entries(r.result.requests)) requests[op] = (requests[op] ?? 0) + n;
  const times = results.map((r) => r.seconds);
  const sizes = results.map((r) => r.result.counters.scanned);
  const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
  const runSeconds = (ended - planned) / 1000;
  const totalSeconds = (ended - started) / 1000;
  await deleteBucketDeep(direct, bucket).catch((err: unknown) => log(`could not delete ${bucket}: ${String(err)}`));
  return {
    set,
    shards: shardCount,
    planned: shards.length,
    objects,
    planSeconds: (planned - started) / 1000,
    runSeconds,
    totalSeconds,
    objectsPerSecond: objects / totalSeconds,
    slowestOverMeanShard: Math.max(...times) / mean(times),
    largestOverMeanShard: Math.max(...sizes) / mean(sizes),
    requests,
    loadAverage1m: Number((loadavg()[0] ?? 0).toFixed(1)),
    ok: problems.length === 0,
    problems: problems.slice(0, 20),
    shardRows: results.map((r) => ({
      index: r.shard.index,
      startAfter: r.shard.startAfter,
      ...(r.shard.endAt !== undefined ? { endAt: r.shard.endAt } : {}),
      objects: r.result.counters.scanned,
      seconds: Number(r.seconds.toFixed(2)),
      status: r.result.status,
    })),
  };
}

function table(rows: Row[]): string {
  const head =
    '| set | shards | objects | plan s | run s | obj/s | speed-up | slowest/mean shard time | largest/mean shard size | load | ok |';
  const out = [head, '|---|---|---|---|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    const one = rows.find((x) => x.set === r.set && x.shards === 1);
    out.push(
      `| ${r.set} | ${r.planned} | ${r.objects} | ${r.planSeconds.toFixed(1)} | ${r.runSeconds.toFixed(1)} | ${r.objectsPerSecond.toFixed(0)} | ${
        one ? (r.objectsPerSecond / one.objectsPerSecond).toFixed(2) : '-'
      } | ${r.slowestOverMeanShard.toFixed(2)} | ${r.largestOverMeanShard.toFixed(2)} | ${r.loadAverage1m} | ${r.ok ? 'yes' : `NO: ${r.problems[0] ?? ''}`} |`,
    );
  }
  return out.join('\n');
}

function version(cmd: string, argv: string[]): string {
  try {
    return execFileSync(cmd, argv, { encoding: 'utf8' }).trim().split('\n')[0] ?? '?';
  } catch {
    return '?';
  }
}

async function main(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), 's3eo-bench-shards-'));
  log(`work dir ${workDir}; config ${JSON.stringify(config)}`);
  const env = await startSeaweed({ workDir: join(workDir, 'seaweedfs') });
  const proxy = await startProxy(env.s3Endpoint, config.latencyMs);
  const direct = client(env, env.s3Endpoint);
  const rows: Row[] = [];
  const date = new Date().toISOString().replace(/[:]/g, '-').replace(/\..*$/, '');
  const machine = {
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? '?'}`,
    memoryGiB: Number((totalmem() / 1024 ** 3).toFixed(1)),
    node: process.version,
    seaweedfs: version(toolPath('weed'), ['version']),
    loadAverageAtStart: loadavg().map((l) => Number(l.toFixed(1))),
    note: 'client, proxy and SeaweedFS share one 2-core machine (and other work on it)',
  };
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `shards-${date}.json`);
  // Written after every run, so a long bench stopped early keeps what it measured.
  const save = (): void =>
    writeFileSync(
      file,
      `${JSON.stringify({ date, config, machine, loadAverageAtEnd: loadavg().map((l) => Number(l.toFixed(1))), rows }, null, 2)}\n`,
    );
  try {
    for (const set of config.sets) {
      for (const n of config.shards) {
        const row = await measure(env, direct, proxy.url, set, n);
        log(
          `${set} x${n}: ${row.objectsPerSecond.toFixed(0)} obj/s, shards ${row.shardRows.map((s) => `${s.objects}/${s.seconds}s`).join(' ')}, slowest/mean ${row.slowestOverMeanShard.toFixed(2)}${row.ok ? '' : `; PROBLEMS: ${row.problems.join('; ')}`}`,
        );
        rows.push(row);
        save();
      }
    }
  } finally {
    direct.destroy();
    proxy.child.stdin?.end();
    await env.stop();
  }
  save();
  console.log(`\n${table(rows)}\n`);
  log(`wrote ${file}`);
  if (rows.some((r) => !r.ok)) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
