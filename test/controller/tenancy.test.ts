// Multi-tenant safety against the real kube-apiserver and SeaweedFS, with the
// operator under deploy/rbac only. Both operators here HAVE an identity of
// their own (AWS_* in their environment, as IRSA would give a pod): the point is
// that a job author cannot borrow it, assume a role through it, write a report
// where the admin did not allow, or aim it at an endpoint the admin did not
// list. "No S3 call" is proven by the fault proxies every job here talks
// through: they record every request that reaches them.
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import {
  createBucket,
  createCredentialsSecret,
  createNamespace,
  getJob,
  kubectl,
  putObjects,
  s3Client,
  startOperator,
  waitUntil,
  type OperatorProcess,
} from '../harness/context.js';

const info = inject('seaweed');
let s3: S3Client;
let s3Proxy: FaultProxy;
let kmsProxy: FaultProxy;
/** Not on the restricted operator's endpoint allow-list. */
let unlistedProxy: FaultProxy;
let restrictedNs: string;
let allowedNs: string;
let restricted: OperatorProcess;
let allowed: OperatorProcess;

const ambientEnv = {
  AWS_ACCESS_KEY_ID: info.accessKeyId,
  AWS_SECRET_ACCESS_KEY: info.secretAccessKey,
  AWS_REGION: info.region,
};
const hostOf = (url: string): string => new URL(url).host;

function keys(n: number, prefix = 'p/'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);
}

interface JobOptions {
  namespace: string;
  name: string;
  bucket: string;
  prefix?: string;
  secret?: boolean;
  endpoint?: string;
  roleArn?: string;
  report?: { destination: string; all?: boolean };
  concurrency?: number;
  /** No kmsEndpoint (an AES256 job needs none). */
  noKms?: boolean;
}

async function apply(j: JobOptions): Promise<void> {
  const manifest = {
    apiVersion: 's3encryption.dev/v1alpha1',
    kind: 'EncryptionJob',
    metadata: { name: j.name, namespace: j.namespace },
    spec: {
      bucket: j.bucket,
      ...(j.prefix ? { prefix: j.prefix } : {}),
      encryption: { type: 'AES256' },
      connection: {
        region: info.region,
        endpoint: j.endpoint ?? s3Proxy.url,
        ...(j.noKms ? {} : { kmsEndpoint: kmsProxy.url }),
        forcePathStyle: true,
        ...(j.secret ? { credentialsSecretRef: { name: 's3-credentials' } } : {}),
        ...(j.roleArn ? { roleArn: j.roleArn, stsEndpoint: s3Proxy.url } : {}),
      },
      ...(j.report ? { report: j.report } : {}),
      ...(j.concurrency ? { concurrency: j.concurrency } : {}),
    },
  };
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
}

type Job = Awaited<ReturnType<typeof getJob>> & { status?: { report?: string; reportParts?: string[] } };

async function waitFor(
  op: OperatorProcess,
  namespace: string,
  name: string,
  condition: string,
  timeout = 90,
): Promise<Job> {
  const res = await kubectl(
    ['wait', `--for=condition=${condition}`, `--timeout=${timeout}s`, '-n', namespace, `ej/${name}`],
    { allowFailure: true },
  );
  const job = (await getJob(namespace, name)) as Job;
  if (res.code !== 0) throw new Error(`ej/${name} not ${condition}: ${JSON.stringify(job.status)}\n${op.logTail(30)}`);
  return job;
}

const reasonOf = (job: Job, type: string): string | undefined =>
  job.status?.conditions?.find((c) => c.type === type && c.status === 'True')?.reason;
const requestsFor = (proxy: FaultProxy, bucket: string): number =>
  proxy.requests.filter((r) => r.bucket === bucket).length;

async function body(bucket: string, key: string): Promise<string> {
  return (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();
}

beforeAll(async () => {
  s3 = s3Client(info);
  [s3Proxy, kmsProxy, unlistedProxy] = await Promise.all([
    startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 1 }),
    startFaultProxy({ target: info.kmsEndpoint, protocol: 'kms', seed: 2 }),
    startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 3 }),
  ]);
  restrictedNs = await createNamespace('tenant');
  allowedNs = await createNamespace('trusted');
  // The restricted operator keeps the default ambient policy (its own namespace only)
  // and lists the endpoint hosts jobs may name; the other lets one namespace use its identity.
  restricted = await startOperator({
    watchNamespace: restrictedNs,
    env: ambientEnv,
    args: [`--allowed-endpoint-hosts=${hostOf(s3Proxy.url)},${hostOf(kmsProxy.url)}`],
  });
  allowed = await startOperator({
    watchNamespace: allowedNs,
    env: ambientEnv,
    args: [
      `--ambient-identity-namespaces=${allowedNs}`,
      `--allowed-role-arns=${allowedNs}=arn:aws:iam::111122223333:role/encrypt-trusted-*`,
    ],
  });
});

afterAll(async () => {
  await Promise.all([restricted?.stop(), allowed?.stop()]);
  await Promise.all([s3Proxy?.stop(), kmsProxy?.stop(), unlistedProxy?.stop()]);
  s3?.destroy();
});

describe('tenancy: the operator identity serves only the namespaces the admin allowed', () => {
  it('a job without a Secret in a namespace not allowed fails IdentityNotAllowed, with no S3 or KMS call', async () => {
    const bucket = await createBucket(s3, 'tnoid');
    await putObjects(s3, bucket, keys(5));
    const s3Before = s3Proxy.requests.length;
    const kmsBefore = kmsProxy.requests.length;
    await apply({ namespace: restrictedNs, name: 'no-identity', bucket });
    const job = await waitFor(restricted, restrictedNs, 'no-identity', 'Failed');
    expect(reasonOf(job, 'Failed')).toBe('IdentityNotAllowed');
    expect(job.status?.conditions?.find((c) => c.type === 'Failed')?.message).toContain('credentialsSecretRef');
    expect(s3Proxy.requests.length - s3Before, 'S3 requests').toBe(0);
    expect(kmsProxy.requests.length - kmsBefore, 'KMS requests').toBe(0);
    expect(
      (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'p/00000' }))).ServerSideEncryption,
    ).toBeUndefined();
    const events = await kubectl([
      'get',
      'events',
      '-n',
      restrictedNs,
      '--field-selector',
      'reason=IdentityNotAllowed',
      '-o',
      'name',
    ]);
    expect(events.stdout.trim()).not.toBe('');
  });

  it('the same job with its own Secret runs', async () => {
    await createCredentialsSecret(restrictedNs, info);
    const bucket = await createBucket(s3, 'tsecret');
    await putObjects(s3, bucket, keys(5));
    await apply({ namespace: restrictedNs, name: 'own-secret', bucket, secret: true });
    const job = await waitFor(restricted, restrictedNs, 'own-secret', 'Complete');
    expect(job.status?.progress).toMatchObject({ scanned: 5, encrypted: 5 });
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'p/00004' }))).ServerSideEncryption).toBe(
      'AES256',
    );
    expect(requestsFor(s3Proxy, bucket)).toBeGreaterThan(0);
  });

  it('a namespace the admin allowed uses the operator identity without a Secret', async () => {
    const bucket = await createBucket(s3, 'tambient');
    await putObjects(s3, bucket, keys(5));
    await apply({ namespace: allowedNs, name: 'ambient', bucket });
    const job = await waitFor(allowed, allowedNs, 'ambient', 'Complete');
    expect(job.status?.progress).toMatchObject({ scanned: 5, encrypted: 5 });
  });

  it('a roleArn the admin did not allow for the namespace is refused before any call (STS or S3)', async () => {
    const bucket = await createBucket(s3, 'trole');
    const before = s3Proxy.requests.length;
    await apply({ namespace: allowedNs, name: 'role', bucket, roleArn: 'arn:aws:iam::111122223333:role/someone-else' });
    const job = await waitFor(allowed, allowedNs, 'role', 'Failed');
    expect(reasonOf(job, 'Failed')).toBe('RoleNotAllowed');
    expect(s3Proxy.requests.length - before).toBe(0);
  });

  it('an endpoint host the admin did not list is refused before any call', async () => {
    const bucket = await createBucket(s3, 'tendpoint');
    await putObjects(s3, bucket, keys(2));
    await apply({ namespace: restrictedNs, name: 'endpoint', bucket, secret: true, endpoint: unlistedProxy.url });
    const job = await waitFor(restricted, restrictedNs, 'endpoint', 'Failed');
    expect(reasonOf(job, 'Failed')).toBe('EndpointNotAllowed');
    expect(unlistedProxy.requests.length).toBe(0);
  });

  it('scenario 12: the endpoint rule judges the address, not the spelling: an IPv4-mapped metadata address is refused', async () => {
    const bucket = await createBucket(s3, 'tmapped');
    for (const [name, endpoint] of [
      ['mapped', 'http://[::ffff:169.254.169.254]:80'],
      ['mapped-hex', 'http://[::ffff:a9fe:a9fe]'],
      ['decimal', 'http://2852039166'],
      ['nat64', 'http://[64:ff9b::a9fe:a9fe]'],
    ] as const) {
      await apply({ namespace: allowedNs, name, bucket, endpoint });
      const job = await waitFor(allowed, allowedNs, name, 'Failed');
      expect(reasonOf(job, 'Failed'), endpoint).toBe('EndpointNotAllowed');
      const message = job.status?.conditions?.find((c) => c.type === 'Failed')?.message ?? '';
      expect(message, endpoint).toMatch(/169\.254\.169\.254.*link-local/);
    }
  });
});

describe('tenancy: denied endpoint addresses, judged after DNS', () => {
  it('scenario 12: a name that resolves to a denied address is refused at connect time, naming the address', async () => {
    // The admin denies loopback here (as one would the cluster's service network): "localhost" is a name
    // the real resolver answers with 127.0.0.1, so the refusal can only come from judging the address.
    const namespace = await createNamespace('denied');
    const denied = await startOperator({
      watchNamespace: namespace,
      env: ambientEnv,
      args: [`--ambient-identity-namespaces=${namespace}`, '--denied-endpoint-addresses=127.0.0.0/8'],
    });
    try {
      const bucket = await createBucket(s3, 'tdenied');
      await putObjects(s3, bucket, keys(2));
      const port = new URL(s3Proxy.url).port;
      const before = requestsFor(s3Proxy, bucket);
      await apply({ namespace, name: 'by-name', bucket, endpoint: `http://localhost:${port}`, noKms: true });
      const byName = await waitFor(denied, namespace, 'by-name', 'Failed');
      expect(reasonOf(byName, 'Failed')).toBe('EndpointNotAllowed');
      expect(byName.status?.conditions?.find((c) => c.type === 'Failed')?.message).toMatch(
        /"localhost" resolves to a denied address: 127\.0\.0\.1 is in the operator's denied endpoint addresses/,
      );
      // The literal address is refused by the tenancy check itself, before the job reads a Secret.
      await apply({ namespace, name: 'by-address', bucket, endpoint: `http://127.0.0.1:${port}`, noKms: true });
      const byAddress = await waitFor(denied, namespace, 'by-address', 'Failed');
      expect(reasonOf(byAddress, 'Failed')).toBe('EndpointNotAllowed');
      expect(requestsFor(s3Proxy, bucket) - before).toBe(0);
    } finally {
      await denied.stop();
    }
  });
});

describe('tenancy: reports', () => {
  it('a report destination outside the allowed set is refused before any call', async () => {
    const bucket = await createBucket(s3, 'trep');
    const other = await createBucket(s3, 'tother');
    await putObjects(s3, bucket, keys(2));
    await apply({
      namespace: restrictedNs,
      name: 'foreign-report',
      bucket,
      secret: true,
      report: { destination: `s3://${other}/reports/x.csv` },
    });
    const job = await waitFor(restricted, restrictedNs, 'foreign-report', 'Failed');
    expect(reasonOf(job, 'Failed')).toBe('ReportDestinationNotAllowed');
    expect(requestsFor(s3Proxy, bucket) + requestsFor(s3Proxy, other)).toBe(0);
  });

  // Both servers answer 412 to If-None-Match: * on an existing key (server-gaps "conditional-put").
  it('an existing object at the report key is never overwritten: the report takes the next key', async () => {
    const bucket = await createBucket(s3, 'tkeep');
    await putObjects(s3, bucket, keys(3));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'reports/run.part-0001.csv', Body: 'precious' }));
    await apply({
      namespace: restrictedNs,
      name: 'keep',
      bucket,
      prefix: 'p/',
      secret: true,
      report: { destination: `s3://${bucket}/reports/run.csv`, all: true },
    });
    const job = await waitFor(restricted, restrictedNs, 'keep', 'Complete');
    expect(await body(bucket, 'reports/run.part-0001.csv')).toBe('precious');
    expect(job.status?.reportParts).toEqual([`s3://${bucket}/reports/run.part-0002.csv`]);
    expect(job.status?.report).toBe(`s3://${bucket}/reports/run.manifest-0002.json`);
    const csv = await body(bucket, 'reports/run.part-0002.csv');
    expect(csv.trim().split('\n')).toHaveLength(1 + 3);
    const refused = s3Proxy.requests.filter(
      (r) => r.bucket === bucket && r.operation === 'PutObject' && r.key === 'reports/run.part-0001.csv',
    );
    expect(refused.map((r) => r.status)).toEqual([412]);
  });

  it("a resumed job's report covers every run: one part per run, and a manifest listing all of them", async () => {
    const bucket = await createBucket(s3, 'tresume');
    const all = keys(400);
    await putObjects(s3, bucket, all);
    await apply({
      namespace: restrictedNs,
      name: 'resume',
      bucket,
      secret: true,
      concurrency: 1,
      report: { destination: `s3://${bucket}/reports/resume.jsonl`, all: true },
    });
    await waitUntil(
      'some progress',
      async () => (((await getJob(restrictedNs, 'resume')).status?.progress?.scanned ?? 0) > 30 ? true : undefined),
      60_000,
      () => restricted.logTail(20),
    );
    await kubectl(['patch', 'ej', 'resume', '-n', restrictedNs, '--type=merge', '-p', '{"spec":{"suspend":true}}']);
    const suspended = await waitFor(restricted, restrictedNs, 'resume', 'Suspended');
    expect(suspended.status?.progress?.scanned).toBeLessThan(all.length);
    expect(suspended.status?.reportParts).toHaveLength(1);
    await kubectl(['patch', 'ej', 'resume', '-n', restrictedNs, '--type=merge', '-p', '{"spec":{"suspend":false}}']);
    const done = await waitFor(restricted, restrictedNs, 'resume', 'Complete');
    const parts = done.status?.reportParts ?? [];
    expect(parts).toEqual([
      `s3://${bucket}/reports/resume.part-0001.jsonl`,
      `s3://${bucket}/reports/resume.part-0002.jsonl`,
    ]);
    const manifest = JSON.parse(await body(bucket, done.status?.report?.replace(`s3://${bucket}/`, '') ?? '')) as {
      parts: string[];
      job: string;
    };
    expect(manifest).toMatchObject({ parts, job: `${restrictedNs}/resume` });
    const seen = new Set<string>();
    for (const part of parts) {
      for (const line of (await body(bucket, part.replace(`s3://${bucket}/`, ''))).trim().split('\n'))
        seen.add((JSON.parse(line) as { key: string }).key);
    }
    expect([...seen].filter((k) => k.startsWith('p/')).sort()).toEqual(all);
  });
});
