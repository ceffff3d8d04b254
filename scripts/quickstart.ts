// The local default: the same real servers the tests use, one bucket of
// sample objects, the operator, and one EncryptionJob watched until Complete.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startKube } from '../test/harness/kube.js';
import { freePort } from '../test/harness/ports.js';
import { startProcess } from '../test/harness/process.js';
import { startSeaweed } from '../test/harness/s3servers.js';

const ROOT = resolve(import.meta.dirname, '..');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), 's3eo-quickstart-'));
  console.log(`starting kube-apiserver + etcd and SeaweedFS + local-kms (logs in ${workDir}) ...`);
  const [kube, s3env] = await Promise.all([
    startKube({ workDir: join(workDir, 'kube') }),
    startSeaweed({ workDir: join(workDir, 's3') }),
  ]);
  const stops = [() => s3env.stop(), () => kube.stop()];
  let stopping = false;
  const stopAll = async (code: number): Promise<never> => {
    if (!stopping) {
      stopping = true;
      for (const stop of stops) await stop().catch(() => undefined);
    }
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  await kube.kubectl(['apply', '-f', join(ROOT, 'crds')]);
  await kube.kubectl(['apply', '-f', join(ROOT, 'deploy', 'rbac')]);
  await kube.kubectl([
    'wait',
    '--for=condition=Established',
    'crd/encryptionjobs.s3encryption.dev',
    'crd/encryptionshards.s3encryption.dev',
  ]);

  const s3 = new S3Client({
    endpoint: s3env.s3Endpoint,
    region: s3env.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3env.accessKeyId, secretAccessKey: s3env.secretAccessKey },
  });
  const bucket = 'quickstart';
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const count = 500;
  console.log(`putting ${count} unencrypted sample objects into s3://${bucket}/logs/ ...`);
  for (let i = 0; i < count; i += 25) {
    await Promise.all(
      Array.from({ length: 25 }, (_, j) =>
        s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: `logs/2024/${String(i + j).padStart(5, '0')}.json`,
            Body: JSON.stringify({ i: i + j }),
            ContentType: 'application/json',
          }),
        ),
      ),
    );
  }

  await kube.kubectl(['create', 'namespace', 'data']);
  await kube.kubectl([
    'create',
    'secret',
    'generic',
    's3-credentials',
    '-n',
    'data',
    `--from-literal=AWS_ACCESS_KEY_ID=${s3env.accessKeyId}`,
    `--from-literal=AWS_SECRET_ACCESS_KEY=${s3env.secretAccessKey}`,
  ]);

  const metricsPort = await freePort();
  const probePort = await freePort();
  const operator = await startProcess({
    name: 'operator',
    command: process.execPath,
    args: [
      join(ROOT, 'dist', 'main.js'),
      `--metrics-bind-address=127.0.0.1:${metricsPort}`,
      `--health-probe-bind-address=127.0.0.1:${probePort}`,
    ],
    env: { ...process.env, KUBECONFIG: kube.operatorKubeconfig },
    logDir: workDir,
    ready: async () => (await fetch(`http://127.0.0.1:${probePort}/readyz`)).ok,
  });
  stops.unshift(() => operator.stop());
  console.log(`operator running (pid ${operator.pid}, log ${operator.logFile})`);

  const job = {
    apiVersion: 's3encryption.dev/v1alpha1',
    kind: 'EncryptionJob',
    metadata: { name: 'encrypt-logs', namespace: 'data' },
    spec: {
      bucket,
      prefix: 'logs/',
      encryption: { type: 'aws:kms', kmsKeyId: 'alias/test-key-a' },
      connection: {
        region: s3env.region,
        endpoint: s3env.s3Endpoint,
        kmsEndpoint: s3env.kmsEndpoint,
        forcePathStyle: true,
        credentialsSecretRef: { name: 's3-credentials' },
      },
    },
  };
  console.log('\n$ kubectl apply -f - <<EOF\n' + JSON.stringify(job, null, 2) + '\nEOF');
  await kube.kubectl(['apply', '-f', '-'], { input: JSON.stringify(job) });

  let last = '';
  for (;;) {
    const out = (await kube.kubectl(['get', 'ej', 'encrypt-logs', '-n', 'data', '--no-headers'])).stdout.trim();
    if (process.stdout.isTTY) process.stdout.write(`\r${out}   `);
    else if (out.replace(/\s+\S+$/, '') !== last) process.stdout.write(`${out}\n`);
    last = out.replace(/\s+\S+$/, '');
    const status = JSON.parse(
      (await kube.kubectl(['get', 'ej', 'encrypt-logs', '-n', 'data', '-o', 'json'])).stdout,
    ) as { status?: { phase?: string } };
    if (status.status?.phase === 'Complete' || status.status?.phase === 'Failed') break;
    await sleep(1000);
  }
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'logs/2024/00000.json' }));
  console.log(`\n\nlogs/2024/00000.json is now ${head.ServerSideEncryption} with key ${head.SSEKMSKeyId}\n`);
  const bin = join(
    process.env.S3EO_CACHE_DIR ?? join(process.env.HOME ?? '', '.cache', 's3-encryption-operator'),
    'bin',
  );
  console.log('Look around (in another shell):');
  console.log(`  ${join(bin, 'kubectl')} --kubeconfig ${kube.adminKubeconfig} get ej -A -o wide`);
  console.log(`  ${join(bin, 'kubectl')} --kubeconfig ${kube.adminKubeconfig} describe ej encrypt-logs -n data`);
  console.log(`  curl -s http://127.0.0.1:${metricsPort}/metrics | grep s3encryption_`);
  console.log(
    `  AWS_ACCESS_KEY_ID=${s3env.accessKeyId} AWS_SECRET_ACCESS_KEY=${s3env.secretAccessKey} ${join(bin, 'aws')} --endpoint-url ${s3env.s3Endpoint} s3api head-object --bucket ${bucket} --key logs/2024/00001.json`,
  );
  if (process.env.QUICKSTART_EXIT === '1') await stopAll(0);
  console.log('\nEverything keeps running until you press Ctrl-C.');
  await new Promise(() => undefined);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
