// The S3 servers the tests talk to, built by test/env/build-s3.sh:
//
//  - SeaweedFS (`weed mini`: master + volume + filer + S3 gateway in one process)
//    with REAL server-side encryption: SSE-S3 (AES256, with a key-encryption key
//    that `weed mini` generates in its data dir) and SSE-KMS, for which SeaweedFS
//    calls local-kms through its "aws" KMS provider. Objects are really encrypted
//    at rest and SSE headers come back on HEAD/GET as on AWS.
//  - moto server: an in-memory AWS mock whose S3 records SSE headers and whose
//    KMS lives on the same port.
//
// Both come with the same customer keys (alias/test-key-a, -b, -c) and one
// disabled key (alias/test-key-disabled). See server-gaps.ts for what each server
// does differently from AWS.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  KMSClient,
} from '@aws-sdk/client-kms';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort, freePorts } from './ports.js';
import { startProcess, toolPath, type ManagedProcess } from './process.js';

export interface KmsKeyInfo {
  /** alias/NAME */
  alias: string;
  /** The bare key id (a UUID). */
  keyId: string;
  /** arn:aws:kms:REGION:ACCOUNT:key/KEYID */
  arn: string;
}

export interface S3Env {
  kind: 'seaweedfs' | 'moto';
  /** http://127.0.0.1:PORT */
  s3Endpoint: string;
  /** http://127.0.0.1:PORT (moto: same as s3Endpoint; SeaweedFS: local-kms) */
  kmsEndpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** alias/test-key-a, -b, -c (enabled) and alias/test-key-disabled (Disabled). */
  keys: KmsKeyInfo[];
  stop(): Promise<void>;
}

export const REGION = 'us-east-1';
/** local-kms's account id (its default); moto's is 123456789012. */
export const LOCAL_KMS_ACCOUNT_ID = '111122223333';
export const TEST_ACCESS_KEY_ID = 's3eo-test-access-key';
export const TEST_SECRET_ACCESS_KEY = 's3eo-test-secret-key';

/** The enabled customer keys every server gets. */
export const ENABLED_KEY_ALIASES = ['alias/test-key-a', 'alias/test-key-b', 'alias/test-key-c'] as const;
export const DISABLED_KEY_ALIAS = 'alias/test-key-disabled';

/** Fixed key ids for local-kms (seeded), so logs and ARNs are recognisable. */
const LOCAL_KMS_KEY_IDS: Record<string, string> = {
  'alias/test-key-a': '0a0a0a0a-0000-4000-8000-00000000000a',
  'alias/test-key-b': '0b0b0b0b-0000-4000-8000-00000000000b',
  'alias/test-key-c': '0c0c0c0c-0000-4000-8000-00000000000c',
  'alias/test-key-disabled': '0d0d0d0d-0000-4000-8000-00000000000d',
};

const SEAWEED_READY_TIMEOUT_MS = 90_000;
const LOCAL_KMS_READY_TIMEOUT_MS = 20_000;
const MOTO_READY_TIMEOUT_MS = 60_000;

/** Environment for a child server: ours, minus AWS settings that would change its behaviour. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('AWS_') || k.startsWith('WEED_') || k.startsWith('KMS_') || k === 'PORT') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

function s3ClientFor(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: TEST_ACCESS_KEY_ID, secretAccessKey: TEST_SECRET_ACCESS_KEY },
    maxAttempts: 1,
  });
}

function kmsClientFor(endpoint: string): KMSClient {
  return new KMSClient({
    endpoint,
    region: REGION,
    credentials: { accessKeyId: TEST_ACCESS_KEY_ID, secretAccessKey: TEST_SECRET_ACCESS_KEY },
    maxAttempts: 1,
  });
}

/** Ready when a signed ListBuckets succeeds. */
function listBucketsProbe(endpoint: string): () => Promise<boolean> {
  const s3 = s3ClientFor(endpoint);
  return async () => {
    const ctl = AbortSignal.timeout(3_000);
    await s3.send(new ListBucketsCommand({}), { abortSignal: ctl });
    return true;
  };
}

/** Stops processes in reverse start order, ignoring errors. */
async function stopAll(procs: ManagedProcess[]): Promise<void> {
  for (const p of [...procs].reverse()) await p.stop().catch(() => undefined);
}

// ---------------------------------------------------------------------------
// local-kms

interface LocalKms {
  endpoint: string;
  keys: KmsKeyInfo[];
  process: ManagedProcess;
}

function localKmsArn(keyId: string): string {
  return `arn:aws:kms:${REGION}:${LOCAL_KMS_ACCOUNT_ID}:key/${keyId}`;
}

/**
 * local-kms with a seed file: four AES keys with fixed ids and their aliases (fresh
 * random key material each run). local-kms seeds every key Enabled, so the disabled
 * one is disabled through the API after start. It listens on all interfaces (it has no
 * bind-address setting); PORT=0 lets it pick a free port, read back from its log.
 */
async function startLocalKms(workDir: string): Promise<LocalKms> {
  const dir = join(workDir, 'local-kms');
  mkdirSync(join(dir, 'data'), { recursive: true });
  const seedPath = join(dir, 'seed.yaml');
  const aliases = [...ENABLED_KEY_ALIASES, DISABLED_KEY_ALIAS];
  const seed = [
    'Keys:',
    '  Symmetric:',
    '    Aes:',
    ...aliases.flatMap((alias) => [
      '      - Metadata:',
      `          KeyId: ${LOCAL_KMS_KEY_IDS[alias]}`,
      `          Description: s3-encryption-operator test key ${alias}`,
      '        BackingKeys:',
      `          - ${randomBytes(32).toString('hex')}`,
    ]),
    'Aliases:',
    ...aliases.flatMap((alias) => [`  - AliasName: ${alias}`, `    TargetKeyId: ${LOCAL_KMS_KEY_IDS[alias]}`]),
    '',
  ].join('\n');
  writeFileSync(seedPath, seed);

  const logDir = workDir;
  const logFile = join(logDir, 'local-kms.log');
  const logStart = existsSync(logFile) ? readFileSync(logFile).length : 0;
  let endpoint = '';
  const proc = await startProcess({
    name: 'local-kms',
    command: toolPath('local-kms'),
    args: [],
    cwd: dir,
    logDir,
    env: childEnv({
      PORT: '0',
      KMS_ACCOUNT_ID: LOCAL_KMS_ACCOUNT_ID,
      KMS_REGION: REGION,
      KMS_SEED_PATH: seedPath,
      KMS_DATA_PATH: join(dir, 'data'),
    }),
    timeoutMs: LOCAL_KMS_READY_TIMEOUT_MS,
    ready: async () => {
      if (!endpoint) {
        const log = readFileSync(logFile).subarray(logStart).toString('utf8');
        const m = /Local KMS started on [^\s:]+:(\d+)/.exec(log);
        if (!m) return false;
        endpoint = `http://127.0.0.1:${m[1]}`;
      }
      const kms = kmsClientFor(endpoint);
      const key = await kms.send(new DescribeKeyCommand({ KeyId: ENABLED_KEY_ALIASES[0] }), {
        abortSignal: AbortSignal.timeout(3_000),
      });
      return key.KeyMetadata?.Enabled === true;
    },
  });
  try {
    const kms = kmsClientFor(endpoint);
    await kms.send(new DisableKeyCommand({ KeyId: LOCAL_KMS_KEY_IDS[DISABLED_KEY_ALIAS] }));
    const keys: KmsKeyInfo[] = [];
    for (const alias of aliases) {
      const d = await kms.send(new DescribeKeyCommand({ KeyId: alias }));
      const id = LOCAL_KMS_KEY_IDS[alias] ?? '';
      const want = alias === DISABLED_KEY_ALIAS ? 'Disabled' : 'Enabled';
      if (d.KeyMetadata?.KeyId !== id || d.KeyMetadata.KeyState !== want) {
        throw new Error(`local-kms: ${alias} is ${JSON.stringify(d.KeyMetadata)}, expected key ${id} ${want}`);
      }
      keys.push({ alias, keyId: id, arn: localKmsArn(id) });
    }
    return { endpoint, keys, process: proc };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

// ---------------------------------------------------------------------------
// SeaweedFS

/**
 * The S3 gateway's identity + KMS configuration (`weed mini -s3.config`). The "kms"
 * block is read by SeaweedFS's s3api (auth_credentials.go, initializeKMSFromJSON →
 * kms.LoadKMSFromConfig): provider type "aws" is its AWS KMS client (aws-sdk-go v1)
 * with a custom endpoint, pointed at local-kms. Key-id caching is off so that a key
 * disabled during a test takes effect at once.
 */
export function seaweedS3Config(kmsEndpoint: string): object {
  return {
    identities: [
      {
        name: 's3eo-test',
        credentials: [{ accessKey: TEST_ACCESS_KEY_ID, secretKey: TEST_SECRET_ACCESS_KEY }],
        actions: ['Admin', 'Read', 'Write', 'List', 'Tagging'],
      },
    ],
    kms: {
      default_provider: 'local-kms',
      providers: {
        'local-kms': {
          type: 'aws',
          region: REGION,
          endpoint: kmsEndpoint,
          access_key: 'local-kms',
          secret_key: 'local-kms',
          cache_enabled: false,
        },
      },
    },
  };
}

/**
 * `weed mini` alone, with the test identity and its KMS provider at
 * `kmsEndpoint` (local-kms, or a fault proxy in front of it), every listener on
 * a free loopback port.
 */
export async function startWeed(opts: {
  workDir: string;
  kmsEndpoint: string;
  name?: string;
  /** The address every listener binds to and is reached at (default 127.0.0.1; "::1" for an IPv6 endpoint). */
  ip?: string;
}): Promise<{ s3Endpoint: string; process: ManagedProcess }> {
  const workDir = resolve(opts.workDir);
  mkdirSync(workDir, { recursive: true });
  const weed = toolPath('weed');
  const dataDir = join(workDir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const ip = opts.ip ?? '127.0.0.1';
  const host = ip.includes(':') ? `[${ip}]` : ip;
  const configPath = join(workDir, 's3-config.json');
  writeFileSync(configPath, JSON.stringify(seaweedS3Config(opts.kmsEndpoint), null, 2));

  // Every listener on an explicit free loopback port: `weed mini` otherwise picks
  // fixed defaults (8333, 9333, ...) and gRPC ports at +10000.
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc, admin, adminGrpc] = await freePorts(10);
  // Unix sockets default to /tmp/seaweedfs-*-<port>.sock; keep them in workDir when
  // the path fits the 107-byte limit of a socket path.
  const sockets: string[] = [];
  if (join(workDir, 'filer.sock').length < 100) {
    sockets.push(`-filer.localSocket=${join(workDir, 'filer.sock')}`, `-s3.localSocket=${join(workDir, 's3.sock')}`);
  }
  const args = [
    'mini',
    `-dir=${dataDir}`,
    // SeaweedFS joins -ip and a port as text: an IPv6 address needs its brackets here.
    `-ip=${host}`,
    `-ip.bind=${host}`,
    '-master.telemetry=false',
    // Every bucket is a collection with volumes of its own: a test run makes a few
    // hundred buckets, more than the volumes mini sizes for itself. Small, many.
    '-master.volumeSizeLimitMB=16',
    '-volume.max=5000',
    `-master.port=${master}`,
    `-master.port.grpc=${masterGrpc}`,
    `-volume.port=${volume}`,
    `-volume.port.grpc=${volumeGrpc}`,
    `-filer.port=${filer}`,
    `-filer.port.grpc=${filerGrpc}`,
    `-s3.port=${s3}`,
    `-s3.port.grpc=${s3Grpc}`,
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
    `-s3.config=${configPath}`,
    // Buckets are created explicitly, as on AWS.
    '-s3.autoCreateBucket=false',
    '-webdav=false',
    '-admin.ui=false',
    `-admin.port=${admin}`,
    `-admin.port.grpc=${adminGrpc}`,
    '-admin.port.legacy=0',
    ...sockets,
  ];
  const s3Endpoint = `http://${host}:${s3}`;
  const proc = await startProcess({
    name: opts.name ?? 'seaweedfs',
    command: weed,
    args,
    cwd: workDir,
    logDir: workDir,
    env: childEnv({}),
    timeoutMs: SEAWEED_READY_TIMEOUT_MS,
    ready: listBucketsProbe(s3Endpoint),
  });
  return { s3Endpoint, process: proc };
}

export async function startSeaweed(opts: { workDir: string }): Promise<S3Env> {
  const workDir = resolve(opts.workDir);
  mkdirSync(workDir, { recursive: true });
  const kms = await startLocalKms(workDir);
  const procs: ManagedProcess[] = [kms.process];
  try {
    const { s3Endpoint, process: proc } = await startWeed({ workDir, kmsEndpoint: kms.endpoint });
    procs.push(proc);
    return {
      kind: 'seaweedfs',
      s3Endpoint,
      kmsEndpoint: kms.endpoint,
      region: REGION,
      accessKeyId: TEST_ACCESS_KEY_ID,
      secretAccessKey: TEST_SECRET_ACCESS_KEY,
      keys: kms.keys,
      stop: () => stopAll(procs),
    };
  } catch (err) {
    await stopAll(procs);
    throw err;
  }
}

// ---------------------------------------------------------------------------
// moto

/** Creates the test keys through moto's KMS API (moto has no seed file). */
async function createMotoKeys(endpoint: string): Promise<KmsKeyInfo[]> {
  const kms = kmsClientFor(endpoint);
  const keys: KmsKeyInfo[] = [];
  for (const alias of [...ENABLED_KEY_ALIASES, DISABLED_KEY_ALIAS]) {
    const created = await kms.send(new CreateKeyCommand({ Description: `s3-encryption-operator test key ${alias}` }));
    const keyId = created.KeyMetadata?.KeyId;
    const arn = created.KeyMetadata?.Arn;
    if (!keyId || !arn) throw new Error(`moto CreateKey returned no key id/arn for ${alias}`);
    await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
    if (alias === DISABLED_KEY_ALIAS) await kms.send(new DisableKeyCommand({ KeyId: keyId }));
    keys.push({ alias, keyId, arn });
  }
  return keys;
}

export async function startMoto(opts: { workDir: string }): Promise<S3Env> {
  const workDir = resolve(opts.workDir);
  mkdirSync(workDir, { recursive: true });
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const proc = await startProcess({
    name: 'moto',
    command: toolPath('moto_server'),
    args: ['-H', '127.0.0.1', '-p', String(port)],
    cwd: workDir,
    logDir: workDir,
    env: childEnv({ AWS_DEFAULT_REGION: REGION, PYTHONUNBUFFERED: '1' }),
    timeoutMs: MOTO_READY_TIMEOUT_MS,
    ready: listBucketsProbe(endpoint),
  });
  try {
    const keys = await createMotoKeys(endpoint);
    return {
      kind: 'moto',
      s3Endpoint: endpoint,
      kmsEndpoint: endpoint,
      region: REGION,
      accessKeyId: TEST_ACCESS_KEY_ID,
      secretAccessKey: TEST_SECRET_ACCESS_KEY,
      keys,
      stop: () => proc.stop(),
    };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}
