// The contenders: each re-encrypts the objects under a prefix to SSE-KMS with
// one key, on its own fresh copy of the data, as a separate process whose CPU
// and peak memory are measured.
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { join, resolve } from 'node:path';
import { writeFileSync } from 'node:fs';
import { freePort } from '../../test/harness/ports.js';
import { startProcess, toolPath } from '../../test/harness/process.js';
import type { KubeEnv } from '../../test/harness/kube.js';
import { apiJobSource, followJob, type JobStatus } from './job-watch.js';
import { procCpuSeconds, procPeakRssMiB, runMeasured, type Measured } from './measure.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');

export interface Env {
  s3Endpoint: string;
  kmsEndpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** What users would pass: an alias for ours, the key ARN for the others. */
  kmsAlias: string;
  kmsArn: string;
  workDir: string;
}

export interface Task {
  bucket: string;
  prefix: string;
  /** Objects above this are copied part by part by contenders that can be told (ours). */
  multipartThreshold?: number;
  /** Count what would change and change nothing (the scale section). */
  dryRun?: boolean;
}

export interface Contender {
  name: string;
  describe: string;
  run(env: Env, task: Task): Promise<Measured>;
}

function childEnv(env: Env, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_')) out[k] = v;
  return {
    ...out,
    AWS_ACCESS_KEY_ID: env.accessKeyId,
    AWS_SECRET_ACCESS_KEY: env.secretAccessKey,
    AWS_REGION: env.region,
    AWS_DEFAULT_REGION: env.region,
    // No user config: every tool with its defaults unless a contender says otherwise.
    AWS_CONFIG_FILE: join(env.workDir, 'aws-config-default'),
    ...extra,
  };
}

export const oursCli: Contender = oursCliWith('ours-cli', 'node dist/cli.js (defaults)', []);

/** Ours at a given concurrency (the latency set's sweep). */
export function oursCliAt(concurrency: number): Contender {
  return oursCliWith(`ours-cli-c${concurrency}`, `node dist/cli.js --concurrency ${concurrency}`, [
    '--concurrency',
    String(concurrency),
  ]);
}

/**
 * Ours in a 48 MiB old space (2 MiB semi-spaces), for the scale section: V8 sizes its heap by the
 * allocation rate, so peak RSS at the defaults says little about what a run keeps. A run that finishes
 * at every count in this heap, with the same RSS, keeps nothing that grows with the number of objects.
 */
export const oursCliHeap48: Contender = oursCliWith(
  'ours-cli-heap48',
  'node --max-old-space-size=48 --max-semi-space-size=2 dist/cli.js',
  [],
  ['--max-old-space-size=48', '--max-semi-space-size=2'],
);

/** The operator's counterpart of ours-cli-heap48 (scale section); the Kubernetes client alone holds about 28 MiB. */
export const OPERATOR_HEAP96 = {
  name: 'ours-operator-heap96',
  nodeOptions: ['--max-old-space-size=96', '--max-semi-space-size=2'],
};

function oursCliWith(name: string, describe: string, extra: string[], nodeOptions: string[] = []): Contender {
  return {
    name,
    describe,
    run: (env, task) =>
      runMeasured(
        process.execPath,
        [
          ...nodeOptions,
          join(ROOT, 'dist', 'cli.js'),
          `s3://${task.bucket}/${task.prefix}`,
          '--sse',
          'aws:kms',
          '--sse-kms-key-id',
          env.kmsAlias,
          '--endpoint-url',
          env.s3Endpoint,
          '--kms-endpoint-url',
          env.kmsEndpoint,
          '--force-path-style',
          '--json',
          ...(task.multipartThreshold ? ['--multipart-threshold', String(task.multipartThreshold)] : []),
          ...(task.dryRun ? ['--dryrun'] : []),
          ...extra,
        ],
        childEnv(env),
      ),
  };
}

function awsCli(name: string, maxConcurrent?: number, replace = false): Contender {
  return {
    name,
    describe: `aws s3 cp --recursive (AWS CLI v1${maxConcurrent ? `, max_concurrent_requests ${maxConcurrent}` : ', defaults'}${replace ? ', --metadata-directive REPLACE' : ''})`,
    run: (env, task) => {
      let extra: Record<string, string> = {};
      if (maxConcurrent) {
        const file = join(env.workDir, `aws-config-${maxConcurrent}`);
        writeFileSync(file, `[default]\ns3 =\n  max_concurrent_requests = ${maxConcurrent}\n`);
        extra = { AWS_CONFIG_FILE: file };
      }
      const url = `s3://${task.bucket}/${task.prefix}`;
      return runMeasured(
        toolPath('aws'),
        [
          's3',
          'cp',
          url,
          url,
          '--recursive',
          '--sse',
          'aws:kms',
          '--sse-kms-key-id',
          env.kmsArn,
          '--endpoint-url',
          env.s3Endpoint,
          '--only-show-errors',
          ...(replace ? ['--metadata-directive', 'REPLACE'] : []),
        ],
        childEnv(env, extra),
      );
    },
  };
}

export const awsDefault = awsCli('aws-cli');
/** The CLI's defaults (10 in flight) with REPLACE, so SeaweedFS takes its copies: the latency set's yardstick. */
export const awsDefaultReplace = awsCli('aws-cli-replace', undefined, true);
export const aws60 = awsCli('aws-cli-60', 60);
/** SeaweedFS refuses the CLI's in-place COPY; with REPLACE the copy goes through (and the check shows what it drops). */
export const aws60Replace = awsCli('aws-cli-60-replace', 60, true);

export const s5cmd: Contender = {
  name: 's5cmd',
  describe: 's5cmd cp --sse aws:kms (v2.3.0, defaults)',
  run: (env, task) =>
    runMeasured(
      toolPath('s5cmd'),
      [
        '--endpoint-url',
        env.s3Endpoint,
        '--log',
        'error',
        'cp',
        '--sse',
        'aws:kms',
        '--sse-kms-key-id',
        env.kmsArn,
        `s3://${task.bucket}/${task.prefix}*`,
        `s3://${task.bucket}/${task.prefix}`,
      ],
      childEnv(env),
    ),
};

export const ceiling: Contender = {
  name: 'ceiling',
  describe: 'one CopyObject per object, no HEAD, concurrency 128 (SDK; not a correct re-encryption)',
  run: (env, task) =>
    runMeasured(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'bench', 'ceiling.ts'), task.bucket, task.prefix, '128', env.kmsArn],
      childEnv(env, { S3EO_BENCH_ENDPOINT: env.s3Endpoint }),
    ),
};

/** Requests per service and operation from the operator's own request histogram, like the CLI's `requests`. */
async function requestCounts(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(url)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('s3encryption_request_duration_seconds_count{')) continue;
    const service = /service="([^"]*)"/.exec(line)?.[1];
    const operation = /operation="([^"]*)"/.exec(line)?.[1];
    const key = `${service ?? '?'}:${operation ?? '?'}`;
    out[key] = (out[key] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return out;
}

/** Numbers the operator's processes and jobs across every operator contender of one bench run. */
let operatorRuns = 0;

/** The operator: an EncryptionJob created for a running `node dist/main.js`, timed until Complete. */
export function operator(
  kube: KubeEnv,
  namespace: string,
  variant: { name: string; nodeOptions: string[] } = { name: 'ours-operator', nodeOptions: [] },
  /** Extra flags of main.js (tests: --watch-namespace, so it takes no other test's jobs). */
  extraArgs: string[] = [],
): Contender {
  return {
    name: variant.name,
    describe: `node ${[...variant.nodeOptions, 'dist/main.js'].join(' ')} + EncryptionJob (spec defaults: concurrency 32), create -> Complete`,
    async run(env, task) {
      const runNo = ++operatorRuns;
      const metrics = await freePort();
      const probes = await freePort();
      const proc = await startProcess({
        name: `bench-operator-${runNo}`,
        command: process.execPath,
        args: [
          ...variant.nodeOptions,
          join(ROOT, 'dist', 'main.js'),
          `--metrics-bind-address=127.0.0.1:${metrics}`,
          `--health-probe-bind-address=127.0.0.1:${probes}`,
          '--log-level=warn',
          ...extraArgs,
        ],
        env: { ...childEnv(env), KUBECONFIG: kube.operatorKubeconfig },
        logDir: join(env.workDir, 'operators'),
        ready: async () => (await fetch(`http://127.0.0.1:${probes}/readyz`)).ok,
        timeoutMs: 60_000,
      });
      try {
        const name = `bench-${runNo}`;
        const job = {
          apiVersion: 's3encryption.dev/v1alpha1',
          kind: 'EncryptionJob',
          metadata: { name, namespace },
          spec: {
            bucket: task.bucket,
            prefix: task.prefix,
            ...(task.dryRun ? { dryRun: true } : {}),
            encryption: { type: 'aws:kms', kmsKeyId: env.kmsAlias },
            connection: {
              region: env.region,
              endpoint: env.s3Endpoint,
              kmsEndpoint: env.kmsEndpoint,
              forcePathStyle: true,
              credentialsSecretRef: { name: 's3-credentials' },
            },
          },
        };
        const kc = new KubeConfig();
        kc.loadFromFile(kube.adminKubeconfig);
        const api = kc.makeApiClient(CustomObjectsApi);
        const resource = { group: 's3encryption.dev', version: 'v1alpha1', namespace, plural: 'encryptionjobs' };
        // Listed before the job exists and watched from that list's resourceVersion, so no status change can
        // slip between create and watch; a watch that fails (429, 410, a cut) is listed and opened again.
        const finished = followJob(apiJobSource(kc, namespace, name), { label: `${namespace}/${name}` });
        await finished.opened;
        const cpu0 = procCpuSeconds(proc.pid);
        // Timed from the create call (made here, in-process: a kubectl process's start and discovery are not the
        // operator's cost) to the watch event that says Complete or Failed.
        const started = performance.now();
        let status: JobStatus;
        try {
          await api.createNamespacedCustomObject({ ...resource, body: job });
          status = await Promise.race([
            finished.status,
            new Promise<never>((_, reject) =>
              setTimeout(() => reject(new Error(`operator job ${name} did not finish in 30 min`)), 1_800_000).unref(),
            ),
          ]);
        } finally {
          finished.stop();
        }
        const wallSeconds = (performance.now() - started) / 1000;
        const requests = await requestCounts(`http://127.0.0.1:${metrics}/metrics`);
        const failed = status.conditions?.some((c) => c.type === 'Failed' && c.status === 'True');
        return {
          code: failed ? 1 : 0,
          wallSeconds,
          cpuSeconds: procCpuSeconds(proc.pid) - cpu0,
          peakRssMiB: procPeakRssMiB(proc.pid),
          stdout: JSON.stringify({
            ...status,
            requests,
            ...(finished.recoveries.length ? { watchRecoveries: finished.recoveries } : {}),
          }),
          stderr: '',
        };
      } finally {
        await proc.stop();
      }
    },
  };
}
