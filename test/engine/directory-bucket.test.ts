// S3 Express directory buckets are refused (issue 20, scenario 9; safety review M7):
// their ListObjectsV2 is not in key order and takes no StartAfter, so a shard's early
// stop at endAt and a resumed run from a checkpoint would skip objects silently. Each
// front end says so before any request: the CRD (real kube-apiserver), the engine
// (nothing reaches the server, seen at the fault proxy) and the CLI (exit 2).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runEngine } from '../../src/engine/index.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { connectionFor, createNamespace, enginePlan, kubectl, ROOT } from '../harness/context.js';

const info = inject('seaweed');
const DIRECTORY_BUCKETS = ['logs--usw2-az1--x-s3', 'logs--usw2-lax1-az1--xa-s3'];
const REASON = /directory bucket.*not in key order.*StartAfter/;
let proxy: FaultProxy;

beforeAll(async () => {
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 9 });
});
afterAll(async () => {
  await proxy?.stop();
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'cli.js'), ...args], {
      env: { ...process.env, AWS_ACCESS_KEY_ID: info.accessKeyId, AWS_SECRET_ACCESS_KEY: info.secretAccessKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('directory buckets (--x-s3, --xa-s3)', () => {
  it('scenario 9: directory buckets are refused by the CRD, with the reason', async () => {
    const namespace = await createNamespace('dirbucket');
    for (const [i, bucket] of DIRECTORY_BUCKETS.entries()) {
      const manifest = JSON.stringify({
        apiVersion: 's3encryption.dev/v1alpha1',
        kind: 'EncryptionJob',
        metadata: { name: `directory-${i}` },
        spec: { bucket, encryption: { type: 'AES256' } },
      });
      const applied = await kubectl(['apply', '--validate=strict', '-n', namespace, '-f', '-'], {
        input: manifest,
        allowFailure: true,
      });
      expect(applied.code, `${bucket} was accepted`).not.toBe(0);
      expect(applied.stderr).toMatch(/spec\.bucket: Invalid value: .*spec\.bucket must not be an S3 Express directory/);
      expect(applied.stderr.replace(/\s+/g, ' ')).toMatch(REASON);
    }
    // A name that only looks close is still a bucket name.
    const near = JSON.stringify({
      apiVersion: 's3encryption.dev/v1alpha1',
      kind: 'EncryptionJob',
      metadata: { name: 'near-directory' },
      spec: { bucket: 'logs-x-s3', encryption: { type: 'AES256' } },
    });
    const ok = await kubectl(['apply', '-n', namespace, '-f', '-'], { input: near, allowFailure: true });
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('scenario 9: directory buckets are refused by the engine (InvalidSpec naming the field) before any request', async () => {
    for (const bucket of DIRECTORY_BUCKETS) {
      const before = proxy.requests.length;
      const result = await runEngine(
        enginePlan(info, bucket, { type: 'AES256' }, { connection: connectionFor(info, { endpoint: proxy.url }) }),
      );
      expect(result).toMatchObject({ status: 'Failed', reason: 'InvalidSpec', retryable: false });
      expect(result.message).toMatch(new RegExp(`^bucket: "${bucket}" is an S3 Express directory bucket`));
      expect(result.message).toMatch(REASON);
      expect(proxy.requests.length).toBe(before);
    }
  });

  it("scenario 9: directory buckets are refused by the CLI: exit 2 with the engine's reason", async () => {
    const conn = ['--endpoint-url', proxy.url, '--region', info.region, '--force-path-style'];
    for (const bucket of DIRECTORY_BUCKETS) {
      const run = await cli([`s3://${bucket}/logs/`, '--sse', 'AES256', ...conn]);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toMatch(new RegExp(`bucket: "${bucket}" is an S3 Express directory bucket`));
      expect(run.stderr).toMatch(REASON);
    }
  });
});
