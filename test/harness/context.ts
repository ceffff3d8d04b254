// What a test file needs from the shared servers: kubectl, S3/KMS clients, a
// namespace and a bucket of its own, and the operator as a separate process.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KMSClient } from '@aws-sdk/client-kms';
import { CreateBucketCommand, PutObjectCommand, S3Client, type PutObjectCommandInput } from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { Connection, Plan } from '../../src/engine/index.js';
import type { S3Info } from './global-setup.js';
import { OPERATOR_NAMESPACE } from './kube.js';
import { freePort } from './ports.js';
import { startProcess, toolPath, type ManagedProcess } from './process.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` until it returns a value (an error counts as "not yet"); on
 * timeout, fails with what it waited for and `log()` (a server's log tail).
 */
/** What `work` resolved to, or 'hung' when it did not settle within `ms` (a stop that must return in bounded time). */
export async function within<T>(work: Promise<T>, ms: number): Promise<T | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), ms)));
  try {
    return await Promise.race([work, hung]);
  } finally {
    clearTimeout(timer);
  }
}

export async function waitUntil<T>(
  what: string,
  fn: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 60_000,
  log?: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await Promise.resolve()
      .then(fn)
      .catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${log?.() ?? ''}`);
    await sleep(200);
  }
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function kubectl(
  args: string[],
  opts: { kubeconfig?: string; input?: string; allowFailure?: boolean } = {},
): Promise<KubectlResult> {
  const kubeconfig = opts.kubeconfig ?? inject('kube').adminKubeconfig;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(toolPath('kubectl'), ['--kubeconfig', kubeconfig, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const result = { code: code ?? -1, stdout, stderr };
      if (code !== 0 && !opts.allowFailure) reject(new Error(`kubectl ${args.join(' ')} exited ${code}: ${stderr}`));
      else resolvePromise(result);
    });
    child.stdin.on('error', () => undefined); // kubectl may exit before reading its input (EPIPE)
    child.stdin.end(opts.input ?? '');
  });
}

export function s3Client(info: S3Info): S3Client {
  return new S3Client({
    endpoint: info.s3Endpoint,
    region: info.region,
    forcePathStyle: true,
    credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Test setup on a busy 2-core machine: SeaweedFS answers 500 now and then under load.
    maxAttempts: 8,
  });
}

export function kmsClient(info: S3Info): KMSClient {
  return new KMSClient({
    endpoint: info.kmsEndpoint,
    region: info.region,
    credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey },
  });
}

/** The connection of an engine plan for a test server (its endpoints and credentials). */
export function connectionFor(info: S3Info, extra: Partial<Connection> = {}): Connection {
  return {
    endpoint: info.s3Endpoint,
    kmsEndpoint: info.kmsEndpoint,
    region: info.region,
    forcePathStyle: true,
    credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey },
    ...extra,
  };
}

/** An engine plan for a whole bucket on a test server; tests override what they need. */
export function enginePlan(info: S3Info, bucket: string, target: Plan['target'], extra: Partial<Plan> = {}): Plan {
  return { bucket, prefix: '', target, connection: connectionFor(info), concurrency: 8, ...extra };
}

export function keyOf(info: S3Info, alias: string): { alias: string; keyId: string; arn: string } {
  const key = info.keys.find((k) => k.alias === alias || k.alias === `alias/${alias}`);
  if (!key) throw new Error(`test KMS key ${alias} is not seeded on ${info.kind}`);
  return key;
}

export async function createBucket(s3: S3Client, prefix = 'ej'): Promise<string> {
  const bucket = uniqueName(prefix);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/** Puts `count` small objects under `prefix`; returns their keys. */
export async function putObjects(
  s3: S3Client,
  bucket: string,
  keys: string[],
  extra: Partial<PutObjectCommandInput> = {},
): Promise<void> {
  const queue = [...keys];
  const worker = async (): Promise<void> => {
    for (let key = queue.shift(); key !== undefined; key = queue.shift()) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `body of ${key}`, ...extra }));
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

export async function createNamespace(prefix = 'ej'): Promise<string> {
  const ns = uniqueName(prefix);
  await kubectl(['create', 'namespace', ns]);
  return ns;
}

export async function createCredentialsSecret(namespace: string, info: S3Info, name = 's3-credentials'): Promise<void> {
  await kubectl([
    'create',
    'secret',
    'generic',
    name,
    '-n',
    namespace,
    `--from-literal=AWS_ACCESS_KEY_ID=${info.accessKeyId}`,
    `--from-literal=AWS_SECRET_ACCESS_KEY=${info.secretAccessKey}`,
  ]);
}

export interface OperatorProcess extends ManagedProcess {
  metricsUrl: string;
  probeUrl: string;
}

/**
 * The leader-election Role of deploy/rbac, unchanged but for its namespace and Lease
 * name: tests that elect a leader in their own namespace get exactly what the
 * chart grants in the operator's namespace, no more.
 */
export async function grantLeaderElection(namespace: string, leaseName: string): Promise<void> {
  const docs = ['role_leader_election.yaml', 'role_binding_leader_election.yaml'].flatMap((f) =>
    parseAllDocuments(readFileSync(join(ROOT, 'deploy', 'rbac', f), 'utf8')).map(
      (d) => d.toJS() as { metadata: { namespace?: string }; rules?: { resourceNames?: string[] }[] },
    ),
  );
  for (const doc of docs) {
    doc.metadata.namespace = namespace;
    for (const rule of doc.rules ?? []) if (rule.resourceNames) rule.resourceNames = [leaseName];
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(doc) });
  }
}

/** Runs `node dist/main.js` with the operator's least-privilege identity. */
export async function startOperator(opts: {
  name?: string;
  watchNamespace?: string;
  args?: string[];
  kubeconfig?: string;
  /** Extra environment, e.g. AWS_* credentials as the pod's own (ambient) identity, or TMPDIR. */
  env?: NodeJS.ProcessEnv;
}): Promise<OperatorProcess> {
  const flag = (name: string): string | undefined =>
    opts.args?.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const leaseNamespace = flag('leader-election-namespace');
  // The operator's own namespace keeps deploy/rbac's Role as it is.
  if (opts.args?.includes('--leader-elect') && leaseNamespace && leaseNamespace !== OPERATOR_NAMESPACE) {
    await grantLeaderElection(leaseNamespace, flag('leader-election-id') ?? 's3-encryption-operator');
  }
  const metricsPort = await freePort();
  const probePort = await freePort();
  const probeUrl = `http://127.0.0.1:${probePort}`;
  const name = opts.name ?? uniqueName('operator');
  const proc = await startProcess({
    name,
    command: process.execPath,
    args: [
      join(ROOT, 'dist', 'main.js'),
      `--metrics-bind-address=127.0.0.1:${metricsPort}`,
      `--health-probe-bind-address=127.0.0.1:${probePort}`,
      ...(opts.watchNamespace ? [`--watch-namespace=${opts.watchNamespace}`] : []),
      ...(opts.args ?? []),
    ],
    env: {
      ...process.env,
      KUBECONFIG: opts.kubeconfig ?? inject('kube').operatorKubeconfig,
      LOG_LEVEL: 'debug',
      ...opts.env,
    },
    logDir: join(inject('workDir'), 'operators'),
    ready: async () => (await fetch(`${probeUrl}/readyz`)).ok,
    timeoutMs: 30_000,
  });
  return Object.assign(proc, { metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`, probeUrl });
}

export interface JobManifest {
  name: string;
  namespace: string;
  bucket: string;
  prefix?: string;
  encryption: { type: string; kmsKeyId?: string; bucketKeyEnabled?: boolean };
  s3: S3Info;
  dryRun?: boolean;
  suspend?: boolean;
  concurrency?: number;
  secretName?: string;
}

export function jobYaml(j: JobManifest): string {
  return JSON.stringify({
    apiVersion: 's3encryption.dev/v1alpha1',
    kind: 'EncryptionJob',
    metadata: { name: j.name, namespace: j.namespace },
    spec: {
      bucket: j.bucket,
      ...(j.prefix !== undefined ? { prefix: j.prefix } : {}),
      encryption: j.encryption,
      connection: {
        region: j.s3.region,
        endpoint: j.s3.s3Endpoint,
        kmsEndpoint: j.s3.kmsEndpoint,
        forcePathStyle: true,
        credentialsSecretRef: { name: j.secretName ?? 's3-credentials' },
      },
      ...(j.dryRun !== undefined ? { dryRun: j.dryRun } : {}),
      ...(j.suspend !== undefined ? { suspend: j.suspend } : {}),
      ...(j.concurrency !== undefined ? { concurrency: j.concurrency } : {}),
    },
  });
}

export async function getJob(
  namespace: string,
  name: string,
): Promise<{
  status?: {
    phase?: string;
    progress?: Record<string, number>;
    conditions?: { type: string; status: string; reason: string; message: string }[];
    checkpoint?: { startAfter?: string };
  };
}> {
  const out = await kubectl(['get', 'encryptionjob', name, '-n', namespace, '-o', 'json']);
  return JSON.parse(out.stdout) as Awaited<ReturnType<typeof getJob>>;
}
