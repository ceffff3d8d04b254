// The benchmark: `npm run bench` (add `-- --quick` for a short run).
//
// Starts SeaweedFS + local-kms (and, for the operator, kube-apiserver + etcd)
// through the test harness, builds the data sets, and runs every contender on a
// fresh copy of the same data: wall time, objects/s, client CPU seconds per
// 1,000 objects, client peak RSS, and a correctness check afterwards. --runs runs
// (3; --quick: 1), the contenders in alternating order (A,B,C / C,B,A / ...); each
// ratio is computed within a run, and its median and spread are reported. Then a
// scale run: the engine listing and classifying (dry run) a prefix of growing size,
// peak RSS against the object count. `npm run bench` builds what it needs first
// (package.json "prebench"). Writes bench/results/<date>.json and .md (--out DIR: there).
//
// Options: --quick, --runs N, --out DIR, --small N, --mixed N, --hot N, --cold N,
//          --scale 10000,50000,200000 (or --scale 0 to skip), --scale-contenders ours-cli,ours-cli-heap48,ours-operator,ours-operator-heap96,
//          --sets small,mixed,skew,latency (--sets scale: none of them, only the scale section),
//          --latency N (objects of the latency set), --latency-ms MS (added to every request),
//          --contenders ours-cli,ours-operator,aws-cli,aws-cli-60,aws-cli-60-replace,s5cmd,ceiling,
//          --import-log FILE (rows of the other sets from an earlier run's log)
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startKube, type KubeEnv } from '../test/harness/kube.js';
import { installOperatorApi } from '../test/harness/global-setup.js';
import { startSeaweed } from '../test/harness/s3servers.js';
import { startFaultProxy, type FaultProxy } from '../test/harness/fault-proxy.js';
import {
  aws60,
  aws60Replace,
  awsDefault,
  awsDefaultReplace,
  oursCliAt,
  ceiling,
  oursCli,
  oursCliHeap48,
  OPERATOR_HEAP96,
  operator,
  ROOT,
  s5cmd,
  type Contender,
  type Env,
} from './lib/contenders.js';
import {
  createCopy,
  deleteBucketDeep,
  mixedSet,
  skewSet,
  latencySet,
  smallSet,
  type DataSet,
  type ObjectSpec,
} from './lib/datasets.js';
import type { Measured } from './lib/measure.js';
import { missingPrerequisites, toolVersion } from './lib/prerequisites.js';
import {
  ratioMedians,
  ratioStats,
  ratioText,
  runOrder,
  summarize,
  type RatioStat,
  type RunRow,
  type Summary,
} from './lib/summary.js';
import { verdictOk, verdictText, verify, type Verdict } from './lib/verify.js';

function args(): Map<string, string> {
  const out = new Map<string, string>();
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith('--')) continue;
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out.set(a.slice(2), 'true');
    else out.set(a.slice(2), (i++, next));
  }
  return out;
}

const opt = args();
const quick = opt.has('quick');
const num = (name: string, full: number, q: number): number => Number(opt.get(name) ?? (quick ? q : full));
const config = {
  runs: num('runs', 3, 1),
  small: num('small', 10_000, 1_000),
  mixed: num('mixed', 60, 20),
  hot: num('hot', 5_000, 1_000),
  cold: num('cold', 500, 100),
  latency: num('latency', 10_000, 1_000),
  latencyMs: num('latency-ms', 20, 20),
  scale: (opt.get('scale') ?? (quick ? '2000,10000' : '10000,50000,200000'))
    .split(',')
    .map(Number)
    .filter((n) => n > 0),
  sets: (opt.get('sets') ?? 'small,mixed,skew,latency').split(','),
  // Who runs the dry run at each scale count: the CLI and/or the operator (README "Scale").
  scaleContenders: (opt.get('scale-contenders') ?? 'ours-cli,ours-cli-heap48,ours-operator').split(','),
  contenders: (
    opt.get('contenders') ?? 'ours-cli,ours-operator,aws-cli,aws-cli-60,aws-cli-60-replace,s5cmd,ceiling'
  ).split(','),
  multipartThreshold: 16 * 1024 * 1024,
};
/** Where the results go: bench/results (committed) unless --out says otherwise (a smoke run's throwaway place). */
const resultsDir = resolve(opt.get('out') ?? join(ROOT, 'bench', 'results'));

/** The `requests` (and the operator's `watchRecoveries`) of ours' JSON output (CLI summary, operator status + metrics). */
function requestsOf(stdout: string): { requests?: Record<string, number>; watchRecoveries?: string[] } {
  try {
    return JSON.parse(stdout) as { requests?: Record<string, number>; watchRecoveries?: string[] };
  } catch {
    return {};
  }
}

const log = (msg: string): void => void process.stderr.write(`[bench] ${msg}\n`);

/** One dry run at one scale count: by the CLI or by the operator (an EncryptionJob with dryRun). */
interface ScaleRow {
  contender: string;
  objects: number;
  seconds: number;
  peakRssMiB: number;
  cpuSeconds: number;
  exitCode: number;
  /** The CLI's request counts, or the operator's status.progress. */
  requests?: unknown;
}

function s3For(env: Env): S3Client {
  return new S3Client({
    endpoint: env.s3Endpoint,
    region: env.region,
    forcePathStyle: true,
    credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 8,
  });
}

function version(cmd: string, a: string[]): string {
  try {
    return (
      execFileSync(cmd, a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
        .trim()
        .split('\n')[0] ?? ''
    );
  } catch (err) {
    return `unknown (${(err as Error).message.slice(0, 60)})`;
  }
}

/** What every measuring step shares: the server, the rows so far, and the operator (started on first use). */
interface Bench {
  s3: S3Client;
  env: Env;
  key: { arn: string; keyId: string };
  rows: RunRow[];
  scaleRows: ScaleRow[];
  oursOperator(variant?: typeof OPERATOR_HEAP96): Promise<Contender>;
  /** A new bucket name for each fresh copy. */
  bucketFor(contender: string): string;
}

/** Every contender the run will start, for the up-front check of what they need. */
function contendersUsed(): string[] {
  const names = ['small', 'mixed', 'skew'].some((set) => config.sets.includes(set)) ? [...config.contenders] : [];
  if (config.sets.includes('latency')) names.push('ours-cli', 'aws-cli-replace', 'ceiling');
  if (config.scale.length > 0) names.push(...config.scaleContenders);
  return names;
}

async function contendersOf(bench: Bench): Promise<Contender[]> {
  const contenders: Contender[] = [];
  const measuresSets = ['small', 'mixed', 'skew'].some((set) => config.sets.includes(set));
  for (const name of config.contenders) {
    if (name === 'ours-cli') contenders.push(oursCli);
    else if (name === 'aws-cli') contenders.push(awsDefault);
    else if (name === 'aws-cli-60') contenders.push(aws60);
    else if (name === 'aws-cli-60-replace') contenders.push(aws60Replace);
    else if (name === 's5cmd') contenders.push(s5cmd);
    else if (name === 'ceiling') contenders.push(ceiling);
    else if (name === 'ours-operator') {
      if (measuresSets) contenders.push(await bench.oursOperator());
    } else throw new Error(`unknown contender ${name}`);
  }
  return contenders;
}

function setsOf(): DataSet[] {
  const sets: DataSet[] = [];
  if (config.sets.includes('small')) sets.push(smallSet(config.small));
  if (config.sets.includes('mixed')) sets.push(mixedSet(config.mixed));
  if (config.sets.includes('skew')) sets.push(skewSet(config.hot, config.cold));
  if (config.sets.includes('latency')) sets.push(latencySet(config.latency, config.latencyMs));
  return sets;
}

/** One contender on its own fresh copy of one set: the row, or undefined if the data or the check failed. */
async function measureOne(
  bench: Bench,
  set: DataSet,
  c: Contender,
  run: number,
  env: Env,
): Promise<RunRow | undefined> {
  const { s3 } = bench;
  const bucket = bench.bucketFor(c.name);
  const t0 = performance.now();
  try {
    await createCopy(s3, bucket, set);
  } catch (err) {
    log(`${set.name} run ${run} ${c.name}: could not create the data in s3://${bucket}: ${String(err)}; skipped`);
    await deleteBucketDeep(s3, bucket).catch(() => undefined);
    return undefined;
  }
  log(
    `${set.name} run ${run} ${c.name}: fresh copy in s3://${bucket} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  let m: Measured;
  try {
    m = await c.run(env, {
      bucket,
      prefix: set.prefix,
      ...(set.name.startsWith('mixed') ? { multipartThreshold: config.multipartThreshold } : {}),
    });
  } catch (err) {
    m = { code: -1, wallSeconds: NaN, cpuSeconds: NaN, peakRssMiB: NaN, stdout: '', stderr: String(err) };
  }
  let verdict: Verdict;
  try {
    verdict = await verify(s3, bucket, set.objects, set.outside, {
      sse: 'aws:kms',
      kmsKeyIds: [bench.key.arn, bench.key.keyId],
    });
  } catch (err) {
    log(`${set.name} run ${run} ${c.name}: the check failed: ${String(err)}; not counted`);
    await deleteBucketDeep(s3, bucket).catch(() => undefined);
    return undefined;
  }
  await deleteBucketDeep(s3, bucket).catch((err: unknown) => log(`could not delete ${bucket}: ${String(err)}`));
  return rowOf(set, c, run, m, verdict);
}

function rowOf(set: DataSet, c: Contender, run: number, m: Measured, verdict: Verdict): RunRow {
  const n = set.objects.length;
  const row: RunRow = {
    set: set.name,
    contender: c.name,
    run,
    objects: n,
    wallSeconds: m.wallSeconds,
    objectsPerSecond: n / m.wallSeconds,
    cpuSecondsPer1000: (m.cpuSeconds / n) * 1000,
    peakRssMiB: m.peakRssMiB,
    exitCode: m.code,
    verdict,
    ok: verdictOk(verdict) && m.code === 0,
    ...(m.code !== 0 ? { note: (m.stderr || m.stdout).trim().split('\n').slice(-3).join(' | ').slice(0, 400) } : {}),
  };
  const { requests, watchRecoveries } = c.name.startsWith('ours-') ? requestsOf(m.stdout) : {};
  if (requests) row.requests = requests;
  if (watchRecoveries) row.watchRecoveries = watchRecoveries;
  log(
    `${set.name} run ${run} ${c.name}: ${m.wallSeconds.toFixed(2)} s, ${row.objectsPerSecond.toFixed(0)} obj/s, ` +
      `${row.cpuSecondsPer1000.toFixed(2)} CPU s/1000, ${m.peakRssMiB.toFixed(0)} MiB, exit ${m.code}, ${verdictText(verdict)}` +
      (row.note ? ` -- ${row.note}` : '') +
      (requests ? `; requests ${JSON.stringify(requests)}` : '') +
      (watchRecoveries ? `; watch reopened after ${watchRecoveries.join(', ')}` : ''),
  );
  if (!row.ok && verdict.examples.length) log(`  e.g. ${verdict.examples.slice(0, 3).join('; ')}`);
  return row;
}

/**
 * Every run of one set. The contenders take turns in alternating order (runOrder: A,B,C then C,B,A),
 * so that neither side of a ratio always runs first, after the same neighbour's bucket deletion.
 */
async function measureSet(bench: Bench, set: DataSet, contenders: Contender[], env: Env): Promise<void> {
  for (let run = 1; run <= config.runs; run++) {
    const order = runOrder(contenders, run);
    log(`${set.name} run ${run} of ${config.runs}: ${order.map((c) => c.name).join(', ')}`);
    for (const c of order) {
      const row = await measureOne(bench, set, c, run, env);
      if (row) bench.rows.push(row);
    }
  }
  // Written after every data set, so that a crash later keeps what was measured.
  report(bench.rows, bench.scaleRows, true);
}

/** kube-apiserver + etcd for the operator, started once, by whichever part needs it first. */
function lazyKube(workDir: string, env: Env): { get(): Promise<KubeEnv>; stop(): Promise<void> } {
  let started: Promise<KubeEnv> | undefined;
  const start = async (): Promise<KubeEnv> => {
    const kube = await startKube({ workDir: join(workDir, 'kube') });
    await installOperatorApi(kube);
    await kube.kubectl(['create', 'namespace', 'bench']);
    await kube.kubectl([
      'create',
      'secret',
      'generic',
      's3-credentials',
      '-n',
      'bench',
      `--from-literal=AWS_ACCESS_KEY_ID=${env.accessKeyId}`,
      `--from-literal=AWS_SECRET_ACCESS_KEY=${env.secretAccessKey}`,
    ]);
    return kube;
  };
  return {
    get: () => (started ??= start()),
    stop: async () => {
      if (started) await (await started).stop();
    },
  };
}

async function main(): Promise<void> {
  const missing = missingPrerequisites(ROOT, contendersUsed());
  if (missing.length) throw new Error(`the bench cannot start:\n  ${missing.join('\n  ')}`);
  const workDir = mkdtempSync(join(tmpdir(), 's3eo-bench-'));
  writeFileSync(join(workDir, 'aws-config-default'), '');
  log(`work dir ${workDir}; config ${JSON.stringify(config)}`);
  const seaweed = await startSeaweed({ workDir: join(workDir, 'seaweedfs') });
  let proxy: FaultProxy | undefined;
  const keyA = seaweed.keys.find((k) => k.alias === 'alias/test-key-a');
  if (!keyA) throw new Error('alias/test-key-a missing');
  const env: Env = {
    s3Endpoint: seaweed.s3Endpoint,
    kmsEndpoint: seaweed.kmsEndpoint,
    region: seaweed.region,
    accessKeyId: seaweed.accessKeyId,
    secretAccessKey: seaweed.secretAccessKey,
    kmsAlias: keyA.alias,
    kmsArn: keyA.arn,
    workDir,
  };
  const kube = lazyKube(workDir, env);
  let bucketNo = 0;
  const bench: Bench = {
    s3: s3For(env),
    env,
    key: keyA,
    // Imported rows of the sets this run does not measure again.
    rows: opt.has('import-log')
      ? importLog(opt.get('import-log') as string).filter(
          (r) => !config.sets.some((set) => r.set.startsWith(`${set}-`)),
        )
      : [],
    scaleRows: [],
    oursOperator: async (variant) => operator(await kube.get(), 'bench', variant),
    bucketFor: (contender) => `bench-${++bucketNo}-${contender}`.slice(0, 60),
  };
  try {
    const contenders = await contendersOf(bench);
    // The latency set: every S3 request of every contender goes through a proxy that adds
    // latencyMs (closer to S3 than loopback). Its own contenders: ours at its defaults and
    // at a concurrency sweep, the AWS CLI at its defaults and at 60, and the ceiling (one copy
    // per object, 128 in flight): the request rate the proxy and server allow (README "Latency set").
    const latencyContenders: Contender[] = [
      oursCli,
      ...[8, 32, 128, 256].map((n) => oursCliAt(n)),
      awsDefaultReplace,
      aws60Replace,
      ceiling,
    ];
    for (const set of setsOf()) {
      const latency = set.name.startsWith('latency');
      if (latency && !proxy) {
        proxy = await startFaultProxy({
          target: env.s3Endpoint,
          protocol: 's3',
          seed: 1,
          rates: { latency: 1, latencyMs: [config.latencyMs, config.latencyMs] },
        });
      }
      const setEnv: Env = latency && proxy ? { ...env, s3Endpoint: proxy.url } : env;
      await measureSet(bench, set, latency ? latencyContenders : contenders, setEnv);
    }
    if (config.scale.length > 0) await measureScale(bench);
  } finally {
    bench.s3.destroy();
    await proxy?.stop().catch(() => undefined);
    await kube.stop().catch(() => undefined);
    await seaweed.stop().catch(() => undefined);
  }
  report(bench.rows, bench.scaleRows);
}

/** The dry run of one scale contender on the `scale/` prefix as it is now. */
async function dryRunOf(bench: Bench, who: string, bucket: string): Promise<Measured> {
  const task = { bucket, prefix: 'scale/', dryRun: true };
  if (who === 'ours-cli' || who === 'ours-cli-heap48')
    return (who === 'ours-cli' ? oursCli : oursCliHeap48).run(bench.env, task);
  // The operator in a capped heap: tells what it keeps per object from V8's lazy heap growth.
  if (who === 'ours-operator-heap96') return (await bench.oursOperator(OPERATOR_HEAP96)).run(bench.env, task);
  // The operator as `ours-operator` runs it (create -> Complete, peak RSS from /proc),
  // with spec.dryRun: the same listing and HEADs as the CLI's dry run, plus status writes.
  if (who === 'ours-operator') return (await bench.oursOperator()).run(bench.env, task);
  throw new Error(`unknown scale contender ${who}`);
}

/** Scale: the engine listing and classifying (dry run) one prefix as it grows. */
async function measureScale(bench: Bench): Promise<void> {
  const { s3 } = bench;
  const bucket = 'bench-scale';
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  let have = 0;
  for (const count of config.scale) {
    const add: ObjectSpec[] = [];
    for (let i = have; i < count; i++) {
      add.push({
        key: `scale/${String(i).padStart(8, '0')}`,
        size: 0,
        contentType: 'application/octet-stream',
        cacheControl: '',
        metadata: {},
        tags: {},
        md5: '',
        fill: 0,
      });
    }
    const t0 = performance.now();
    await putAllPlain(s3, bucket, add);
    have = count;
    log(`scale: ${count} objects under scale/ (+${add.length} in ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    for (const who of config.scaleContenders) {
      const dry = await dryRunOf(bench, who, bucket);
      let requests: unknown;
      try {
        const out = JSON.parse(dry.stdout) as { requests?: unknown; progress?: unknown };
        requests = who.startsWith('ours-cli') ? out.requests : out.progress;
      } catch {
        requests = dry.stdout.slice(0, 200);
      }
      bench.scaleRows.push({
        contender: who,
        objects: count,
        seconds: dry.wallSeconds,
        peakRssMiB: dry.peakRssMiB,
        cpuSeconds: dry.cpuSeconds,
        exitCode: dry.code,
        requests,
      });
      log(
        `scale: ${who} dry run of ${count}: ${dry.wallSeconds.toFixed(1)} s, peak RSS ${dry.peakRssMiB.toFixed(0)} MiB, CPU ${dry.cpuSeconds.toFixed(1)} s, exit ${dry.code}` +
          (dry.code !== 0 ? ` -- ${(dry.stderr || dry.stdout).trim().slice(-300)}` : ''),
      );
      report(bench.rows, bench.scaleRows, true);
    }
  }
}

/**
 * Rows of a run that died (e.g. the server ran out of volumes) from its log lines, so a
 * second run can measure only what is missing (--sets/--contenders) and report it all.
 */
function importLog(file: string): RunRow[] {
  const rows: RunRow[] = [];
  const re =
    /^\[bench\] (\S+) run (\d+) (\S+): ([\d.]+) s, (\d+) obj\/s, ([\d.]+) CPU s\/1000, (\d+) MiB, exit (-?\d+), (ok|WRONG \(([^)]*)\))/;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    const [, set, run, contender, wall, ops, cpu, rss, code, verdictWord, losses] = m as unknown as string[];
    const counted = /^(?:small|mixed|skew|latency)-(\d+)/.exec(set as string);
    const objects = counted ? Number(counted[1]) : Math.round(Number(ops) * Number(wall));
    const lossMap: Record<string, number> = {};
    for (const part of (losses ?? '')
      .replace(/ of \d+$/, '')
      .split(', ')
      .filter(Boolean)) {
      const lm = /^(.*) (\d+)$/.exec(part);
      if (lm) lossMap[lm[1] as string] = Number(lm[2]);
    }
    const ok = verdictWord === 'ok' && Number(code) === 0;
    rows.push({
      set: set as string,
      contender: contender as string,
      run: Number(run),
      objects,
      wallSeconds: Number(wall),
      objectsPerSecond: Number(ops),
      cpuSecondsPer1000: Number(cpu),
      peakRssMiB: Number(rss),
      exitCode: Number(code),
      verdict: {
        checked: objects,
        notEncrypted: lossMap.encryption ?? 0,
        changed: verdictWord === 'ok' ? 0 : 1,
        missing: 0,
        outsideTouched: lossMap['outside-prefix-touched'] ?? 0,
        examples: [],
        losses: lossMap,
      },
      ok,
      note: `imported from ${file}`,
    });
  }
  log(`imported ${rows.length} rows from ${file}`);
  return rows;
}

async function putAllPlain(s3: S3Client, bucket: string, objects: ObjectSpec[]): Promise<void> {
  const queue = [...objects];
  await Promise.all(
    Array.from({ length: 128 }, async () => {
      for (let o = queue.shift(); o; o = queue.shift())
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: o.key, Body: new Uint8Array(0) }));
    }),
  );
}

const DATE = new Date().toISOString().replace(/[:]/g, '-').replace(/\..*$/, '');

function machineInfo(): Record<string, string | number> {
  return {
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? '?'}`,
    memoryGiB: Number((totalmem() / 1024 ** 3).toFixed(1)),
    node: process.version,
    awsCli: toolVersion('aws', (p) => version(p, ['--version'])),
    s5cmd: toolVersion('s5cmd', (p) => version(p, ['version']) + ' (built from github.com/peak/s5cmd/v2 v2.3.0)'),
    seaweedfs: toolVersion('weed', (p) => version(p, ['version'])),
    note: 'client and servers share the same 2-core machine: numbers compare contenders here, not AWS throughput',
  };
}

/** One set's table (median row per contender), then each ratio's median and spread over the runs. */
function setLines(summary: Summary[], set: string, stats: Record<string, RatioStat>, rows: RunRow[]): string[] {
  const group = summary.filter((s) => s.set === set);
  const ours = group.find((s) => s.contender === 'ours-cli');
  const lines = [
    `## ${set} (median of ${group[0]?.runs ?? 0})`,
    '',
    '| contender | wall s | obj/s | x ours | CPU s /1000 obj | peak RSS MiB | correct |',
    '|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const s of group) {
    const ratio = ours && s.ok ? (s.ops / ours.ops).toFixed(2) : '-';
    lines.push(
      `| ${s.contender} | ${s.wall.toFixed(2)} | ${s.ok ? s.ops.toFixed(0) : `(${s.ops.toFixed(0)})`} | ${ratio} | ${s.cpuPer1000.toFixed(2)} | ${s.rss.toFixed(0)} | ${s.verdict} |`,
    );
  }
  const runs = [...new Set(rows.filter((r) => r.set === set).map((r) => r.run))].sort((a, b) => a - b);
  const order = runs.map(
    (run) =>
      `run ${run}: ${rows
        .filter((r) => r.set === set && r.run === run)
        .map((r) => r.contender)
        .join(', ')}`,
  );
  lines.push(
    '',
    `Ratios (each computed within one run; median, and the spread over the runs): ${Object.entries(stats)
      .map(([k, v]) => `${k} ${ratioText(v)}`)
      .join(', ')}`,
    '',
    `Order: ${order.join('; ')}`,
    '',
  );
  return lines;
}

function scaleLines(scaleRows: ScaleRow[]): string[] {
  if (!scaleRows.length) return [];
  return [
    '## Scale: dry run (list + HEAD + classify) of one prefix',
    '',
    '| objects | contender | wall s | CPU s | peak RSS MiB | exit |',
    '|---:|---|---:|---:|---:|---:|',
    ...scaleRows.map(
      (r) =>
        `| ${r.objects} | ${r.contender} | ${r.seconds.toFixed(1)} | ${r.cpuSeconds.toFixed(1)} | ${r.peakRssMiB.toFixed(0)} | ${r.exitCode} |`,
    ),
    '',
  ];
}

function report(rows: RunRow[], scaleRows: ScaleRow[], partial = false): void {
  const summary = summarize(rows);
  const stats = ratioStats(rows);
  const machine = machineInfo();
  const date = DATE;
  const dir = resultsDir;
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, `${date}.json`),
    JSON.stringify(
      { date, config, machine, ratios: ratioMedians(stats), ratioSpread: stats, summary, scale: scaleRows, runs: rows },
      null,
      2,
    ),
  );
  const lines: string[] = [
    `# Benchmark ${date}`,
    '',
    `Machine: ${machine.cpus}, ${machine.memoryGiB} GiB, Node ${machine.node}; ${machine.awsCli}; s5cmd ${machine.s5cmd}; ${machine.seaweedfs}.`,
    `Config: ${JSON.stringify(config)}`,
    '',
    String(machine.note),
    '',
  ];
  for (const set of new Set(summary.map((s) => s.set))) lines.push(...setLines(summary, set, stats[set] ?? {}, rows));
  lines.push(...scaleLines(scaleRows));
  const md = lines.join('\n');
  writeFileSync(join(dir, `${date}.md`), md);
  if (partial) return;
  process.stdout.write(`${md}\n`);
  log(`wrote ${join(dir, date)}.json and .md`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
