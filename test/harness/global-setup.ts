// Starts the real servers once for the whole test run: kube-apiserver + etcd,
// SeaweedFS + local-kms, and moto. A server that cannot start fails the run
// with its log tail; nothing is skipped. Everything is stopped at the end.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startKube, type KubeEnv } from './kube.js';
import { startMoto, startSeaweed, type S3Env } from './s3servers.js';

export interface S3Info {
  kind: S3Env['kind'];
  s3Endpoint: string;
  kmsEndpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  keys: S3Env['keys'];
}

export interface KubeInfo {
  server: string;
  adminKubeconfig: string;
  operatorKubeconfig: string;
  etcdUrl: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    kube: KubeInfo;
    seaweed: S3Info;
    moto: S3Info;
    workDir: string;
  }
}

function info(env: S3Env): S3Info {
  const { kind, s3Endpoint, kmsEndpoint, region, accessKeyId, secretAccessKey, keys } = env;
  return { kind, s3Endpoint, kmsEndpoint, region, accessKeyId, secretAccessKey, keys };
}

const ROOT = resolve(import.meta.dirname, '..', '..');

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const workDir = mkdtempSync(join(tmpdir(), 's3eo-test-'));
  const stops: (() => Promise<void>)[] = [];
  const teardown = async (): Promise<void> => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    const started = Date.now();
    const [kube, seaweed, moto] = await Promise.all([
      startKube({ workDir: join(workDir, 'kube') }).then((k) => (stops.push(() => k.stop()), k)),
      startSeaweed({ workDir: join(workDir, 'seaweedfs') }).then((s) => (stops.push(() => s.stop()), s)),
      startMoto({ workDir: join(workDir, 'moto') }).then((m) => (stops.push(() => m.stop()), m)),
    ]);
    await installOperatorApi(kube);
    console.log(`test servers ready in ${((Date.now() - started) / 1000).toFixed(1)}s (logs in ${workDir})`);
    project.provide('kube', {
      server: kube.server,
      adminKubeconfig: kube.adminKubeconfig,
      operatorKubeconfig: kube.operatorKubeconfig,
      etcdUrl: kube.etcdUrl,
    });
    project.provide('seaweed', info(seaweed));
    project.provide('moto', info(moto));
    project.provide('workDir', workDir);
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}

/** The CRD and the operator's RBAC, from the same files users apply. */
export async function installOperatorApi(kube: KubeEnv): Promise<void> {
  await kube.kubectl(['apply', '-f', join(ROOT, 'crds')]);
  await kube.kubectl(['apply', '-f', join(ROOT, 'deploy', 'rbac')]);
  await kube.kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/encryptionjobs.s3encryption.dev',
    'crd/encryptionshards.s3encryption.dev',
  ]);
}
