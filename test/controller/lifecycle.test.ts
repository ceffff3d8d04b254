// The operator as users drive it: dry run, suspend and resume, delete mid-run,
// job-level failures, credentials, metrics. One operator process (least
// privilege identity) for the file, watching this file's namespace.
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import {
  createBucket,
  createCredentialsSecret,
  createNamespace,
  getJob,
  jobYaml,
  kubectl,
  putObjects,
  s3Client,
  sleep,
  waitUntil,
  startOperator,
  type JobManifest,
  type OperatorProcess,
} from '../harness/context.js';

const info = inject('seaweed');
let s3: S3Client;
let namespace: string;
let operator: OperatorProcess;

const until = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> =>
  waitUntil(what, fn, timeoutMs, () => operator.logTail(30));

async function apply(j: Omit<JobManifest, 'namespace' | 's3'>): Promise<void> {
  await kubectl(['apply', '-f', '-'], { input: jobYaml({ ...j, namespace, s3: info }) });
}

async function waitFor(name: string, condition: string, timeout = 90): Promise<Awaited<ReturnType<typeof getJob>>> {
  const res = await kubectl(
    ['wait', `--for=condition=${condition}`, `--timeout=${timeout}s`, '-n', namespace, `ej/${name}`],
    { allowFailure: true },
  );
  const job = await getJob(namespace, name);
  if (res.code !== 0)
    throw new Error(`ej/${name} not ${condition}: ${JSON.stringify(job.status)}\n${operator.logTail(30)}`);
  return job;
}

function keys(n: number, prefix = 'p/'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);
}

beforeAll(async () => {
  s3 = s3Client(info);
  namespace = await createNamespace('life');
  await createCredentialsSecret(namespace, info);
  operator = await startOperator({ watchNamespace: namespace });
});

afterAll(async () => {
  await operator?.stop();
  s3?.destroy();
});

describe('operator lifecycle', () => {
  it('a dry run completes and changes nothing', async () => {
    const bucket = await createBucket(s3, 'dry');
    await putObjects(s3, bucket, keys(20));
    const before = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'p/00000' }));
    await apply({ name: 'dry', bucket, encryption: { type: 'aws:kms', kmsKeyId: 'alias/test-key-a' }, dryRun: true });
    const job = await waitFor('dry', 'Complete');
    expect(job.status?.progress).toMatchObject({ scanned: 20, encrypted: 0, wouldEncrypt: 20 });
    expect(job.status?.conditions?.find((c) => c.type === 'Complete')?.reason).toBe('DryRunCompleted');
    const after = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'p/00000' }));
    expect(after.ETag).toBe(before.ETag);
    expect(after.SSEKMSKeyId).toBeUndefined();

    // Turning the dry run off runs it for real (a new generation).
    await kubectl(['patch', 'ej', 'dry', '-n', namespace, '--type=merge', '-p', '{"spec":{"dryRun":false}}']);
    await until('the real run', async () => {
      const j = await getJob(namespace, 'dry');
      return j.status?.phase === 'Complete' && j.status.progress?.encrypted === 20 ? j : undefined;
    });
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'p/00019' }))).ServerSideEncryption).toBe(
      'aws:kms',
    );
  });

  it('writes the per-object report to S3 and names it in status', async () => {
    const bucket = await createBucket(s3, 'report');
    await putObjects(s3, bucket, keys(5));
    await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        ...JSON.parse(
          jobYaml({ name: 'report', namespace, bucket, prefix: 'p/', encryption: { type: 'AES256' }, s3: info }),
        ),
        spec: {
          ...(
            JSON.parse(
              jobYaml({ name: 'report', namespace, bucket, prefix: 'p/', encryption: { type: 'AES256' }, s3: info }),
            ) as { spec: object }
          ).spec,
          report: { destination: `s3://${bucket}/reports/run.csv`, all: true },
        },
      }),
    });
    const job = await waitFor('report', 'Complete');
    // One part per run and a manifest listing the parts (test/controller/tenancy.test.ts has the multi-run case).
    const status = job.status as { report?: string; reportParts?: string[] };
    expect(status.report).toBe(`s3://${bucket}/reports/run.manifest-0001.json`);
    expect(status.reportParts).toEqual([`s3://${bucket}/reports/run.part-0001.csv`]);
    const csv = await (
      await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'reports/run.part-0001.csv' }))
    ).Body!.transformToString();
    expect(csv.trim().split('\n')).toHaveLength(6);
    expect(csv).toContain('p/00004,encrypted,copy');
  });

  it('include/exclude and maxObjects limit what a job touches', async () => {
    const bucket = await createBucket(s3, 'filter');
    await putObjects(s3, bucket, ['f/a.json', 'f/b.json', 'f/c.txt', 'f/tmp/d.json']);
    const base = JSON.parse(
      jobYaml({ name: 'filter', namespace, bucket, prefix: 'f/', encryption: { type: 'AES256' }, s3: info }),
    ) as { spec: object };
    await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({ ...base, spec: { ...base.spec, include: ['*.json'], exclude: ['tmp/*'] } }),
    });
    const job = await waitFor('filter', 'Complete');
    expect(job.status?.progress).toMatchObject({ scanned: 4, encrypted: 2, skipped: 2 });
    expect((job.status?.progress as { skippedByReason?: Record<string, number> }).skippedByReason?.filtered).toBe(2);
    expect(
      (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'f/c.txt' }))).ServerSideEncryption,
    ).toBeUndefined();
  });

  it('suspend pauses with the checkpoint kept; resume continues from it', async () => {
    const bucket = await createBucket(s3, 'susp');
    const all = keys(800);
    await putObjects(s3, bucket, all);
    await apply({ name: 'susp', bucket, encryption: { type: 'AES256' }, concurrency: 2 });
    await until('some progress', async () => {
      const j = await getJob(namespace, 'susp');
      return (j.status?.progress?.scanned ?? 0) > 50 ? j : undefined;
    });
    await kubectl(['patch', 'ej', 'susp', '-n', namespace, '--type=merge', '-p', '{"spec":{"suspend":true}}']);
    const suspended = await waitFor('susp', 'Suspended');
    expect(suspended.status?.phase).toBe('Suspended');
    const cp = suspended.status?.checkpoint?.startAfter;
    expect(cp).toBeDefined();
    const pausedAt = suspended.status?.progress?.scanned ?? 0;
    expect(pausedAt).toBeLessThan(all.length);
    await sleep(1500);
    expect((await getJob(namespace, 'susp')).status?.progress?.scanned).toBe(pausedAt);

    await kubectl(['patch', 'ej', 'susp', '-n', namespace, '--type=merge', '-p', '{"spec":{"suspend":false}}']);
    const done = await waitFor('susp', 'Complete');
    const p = done.status?.progress ?? {};
    expect(p.scanned).toBe(all.length);
    expect((p.encrypted ?? 0) + (p.alreadyEncrypted ?? 0)).toBe(all.length);
    expect(p.failed).toBe(0);
    const events = await kubectl([
      'get',
      'events',
      '-n',
      namespace,
      '--field-selector',
      'involvedObject.name=susp',
      '-o',
      'jsonpath={.items[*].reason}',
    ]);
    expect(events.stdout).toContain('Resumed');
  });

  it('a spec change mid-run (concurrency) restarts the run from the checkpoint; counters still add up', async () => {
    const bucket = await createBucket(s3, 'respec');
    const all = keys(600);
    await putObjects(s3, bucket, all);
    await apply({ name: 'respec', bucket, encryption: { type: 'AES256' }, concurrency: 1 });
    await until('some progress', async () => {
      const j = await getJob(namespace, 'respec');
      return (j.status?.progress?.scanned ?? 0) > 30 ? j : undefined;
    });
    await kubectl(['patch', 'ej', 'respec', '-n', namespace, '--type=merge', '-p', '{"spec":{"concurrency":16}}']);
    const done = await waitFor('respec', 'Complete');
    const p = done.status?.progress ?? {};
    expect(p.scanned).toBe(all.length);
    expect((p.encrypted ?? 0) + (p.alreadyEncrypted ?? 0)).toBe(all.length);
    expect((done.status as { observedGeneration?: number }).observedGeneration).toBe(2);
  });

  it('deleting a job mid-run stops it promptly and leaves no open multipart upload', async () => {
    const bucket = await createBucket(s3, 'del');
    await putObjects(s3, bucket, keys(600));
    await apply({ name: 'del', bucket, encryption: { type: 'AES256' }, concurrency: 2 });
    await until('some progress', async () => {
      const j = await getJob(namespace, 'del');
      return (j.status?.progress?.scanned ?? 0) > 20 ? j : undefined;
    });
    const started = Date.now();
    await kubectl(['delete', 'ej', 'del', '-n', namespace, '--timeout=30s']);
    expect(Date.now() - started).toBeLessThan(15_000);
    const gone = await kubectl(['get', 'ej', 'del', '-n', namespace], { allowFailure: true });
    expect(gone.code).not.toBe(0);
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    expect(uploads.Uploads ?? []).toEqual([]);
  });

  it('a missing bucket ends Failed with a clear reason, without a retry storm', async () => {
    await apply({ name: 'nobucket', bucket: 'no-such-bucket-s3eo', encryption: { type: 'AES256' } });
    const job = await waitFor('nobucket', 'Failed');
    const failed = job.status?.conditions?.find((c) => c.type === 'Failed');
    expect(failed?.reason).toBe('BucketNotFound');
    expect(failed?.message).toContain('no-such-bucket-s3eo');
    const rv = (await kubectl(['get', 'ej', 'nobucket', '-n', namespace, '-o', 'jsonpath={.metadata.resourceVersion}']))
      .stdout;
    await sleep(3000);
    // Nothing keeps writing to a failed job.
    expect(
      (await kubectl(['get', 'ej', 'nobucket', '-n', namespace, '-o', 'jsonpath={.metadata.resourceVersion}'])).stdout,
    ).toBe(rv);
  });

  it('a disabled KMS key ends Failed before any object is touched', async () => {
    const bucket = await createBucket(s3, 'disabled');
    await putObjects(s3, bucket, keys(5));
    await apply({ name: 'disabled', bucket, encryption: { type: 'aws:kms', kmsKeyId: 'alias/test-key-disabled' } });
    const job = await waitFor('disabled', 'Failed');
    expect(job.status?.conditions?.find((c) => c.type === 'Failed')?.reason).toBe('KMSKeyDisabled');
    expect(job.status?.progress?.scanned ?? 0).toBe(0);
  });

  it('denied calls (wrong credentials) end Failed with a clear reason', async () => {
    await kubectl([
      'create',
      'secret',
      'generic',
      'bad-creds',
      '-n',
      namespace,
      '--from-literal=AWS_ACCESS_KEY_ID=nobody',
      '--from-literal=AWS_SECRET_ACCESS_KEY=wrong',
    ]);
    const bucket = await createBucket(s3, 'denied');
    await putObjects(s3, bucket, keys(3));
    await apply({ name: 'denied', bucket, encryption: { type: 'AES256' }, secretName: 'bad-creds' });
    const job = await waitFor('denied', 'Failed');
    const failed = job.status?.conditions?.find((c) => c.type === 'Failed');
    expect(failed?.reason).toMatch(/AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch/);
    expect(JSON.stringify(job.status)).not.toContain('wrong');
    // Credentials never reach logs or events either.
    expect(operator.logTail(10_000)).not.toContain(info.secretAccessKey);
    const events = await kubectl(['get', 'events', '-n', namespace, '-o', 'json']);
    expect(events.stdout).not.toContain(info.secretAccessKey);
    expect(events.stdout).not.toContain('"wrong"');
  });

  it('a missing Secret is a waiting state (not Failed), naming the Secret and the namespace', async () => {
    const bucket = await createBucket(s3, 'nosecret');
    await apply({ name: 'nosecret', bucket, encryption: { type: 'AES256' }, secretName: 'does-not-exist' });
    // test/controller/secret-wait.test.ts follows it until the Secret appears.
    const waiting = await until('SecretNotFound', async () => {
      const j = await getJob(namespace, 'nosecret');
      return j.status?.conditions?.find((c) => c.type === 'Progressing' && c.reason === 'SecretNotFound')
        ? j
        : undefined;
    });
    expect(waiting.status?.phase).toBe('Pending');
    const progressing = waiting.status?.conditions?.find((c) => c.type === 'Progressing');
    expect(progressing?.message).toContain('does-not-exist');
    expect(progressing?.message).toContain(namespace);
  });

  it('status writes are coalesced to about one per second per job (invariant 7)', async () => {
    const bucket = await createBucket(s3, 'writes');
    await putObjects(s3, bucket, keys(2000));
    const started = Date.now();
    await apply({ name: 'writes', bucket, encryption: { type: 'AES256' }, concurrency: 8 });
    await waitFor('writes', 'Complete', 120);
    const seconds = (Date.now() - started) / 1000;
    const ended = operator
      .logTail(10_000)
      .split('\n')
      .filter((l) => l.includes('"name":"writes"') && l.includes('"run ended"'))
      .map((l) => JSON.parse(l) as { writes: number });
    expect(ended).toHaveLength(1);
    const writes = ended[0]!.writes;
    console.log(`2000-object job: ${writes} status writes in ${seconds.toFixed(1)} s`);
    // One per second at most, plus the start and the end.
    expect(writes).toBeLessThanOrEqual(Math.ceil(seconds) + 3);
  });

  it('a job never reads a Secret of another namespace (invariant 6)', async () => {
    const other = await createNamespace('foreign');
    await createCredentialsSecret(other, info, 'foreign-creds');
    const bucket = await createBucket(s3, 'foreign');
    await putObjects(s3, bucket, keys(2));
    // Same name as the other namespace's Secret: the operator looks only in the job's namespace.
    await apply({ name: 'foreign', bucket, encryption: { type: 'AES256' }, secretName: 'foreign-creds' });
    // Waiting for a Secret of that name in its own namespace: never using the other one.
    const job = await until('SecretNotFound', async () => {
      const j = await getJob(namespace, 'foreign');
      return j.status?.conditions?.find((c) => c.type === 'Progressing' && c.reason === 'SecretNotFound')
        ? j
        : undefined;
    });
    expect(job.status?.phase).toBe('Pending');
    expect(job.status?.conditions?.find((c) => c.type === 'Progressing')?.message).toContain(
      `not found in namespace "${namespace}"`,
    );
    expect(job.status?.progress?.scanned ?? 0).toBe(0);
    // And the API server refuses a namespace field on the reference outright.
    const refused = await kubectl(['apply', '--validate=strict', '-f', '-'], {
      allowFailure: true,
      input: JSON.stringify({
        apiVersion: 's3encryption.dev/v1alpha1',
        kind: 'EncryptionJob',
        metadata: { name: 'foreign-ns', namespace },
        spec: {
          bucket,
          encryption: { type: 'AES256' },
          connection: { credentialsSecretRef: { name: 'foreign-creds', namespace: other } },
        },
      }),
    });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/unknown field "spec\.connection\.credentialsSecretRef\.namespace"/);
  });

  it('metrics scraped over HTTP show the jobs and the controller', async () => {
    const body = await (await fetch(operator.metricsUrl)).text();
    expect(body).toMatch(
      new RegExp(`s3encryption_objects_total\\{namespace="${namespace}",name="dry",result="encrypted"\\} 20`),
    );
    expect(body).toMatch(/controller_runtime_reconcile_total\{controller="encryptionjob",result="success"\} \d+/);
    expect(body).toMatch(/s3encryption_request_duration_seconds_bucket\{.*service="s3",operation="CopyObject"/);
    expect(body).toMatch(/workqueue_adds_total\{name="encryptionjob",controller="encryptionjob"\} \d+/);
    expect(body).toContain(`s3encryption_job_condition{namespace="${namespace}",name="nobucket",condition="Failed"} 1`);
    // A deleted job's series disappear.
    expect(body).not.toContain(`name="del",`);
  });
});
