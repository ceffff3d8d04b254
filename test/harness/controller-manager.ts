// The real kube-controller-manager (built by test/env/build-kube.sh from the same
// module and version as kube-apiserver), for the tests that need real Job and
// Pod controllers. It is not part of the global setup: a test file starts it in
// its beforeAll, so the rest of the suite does not pay for it.
//
// Several test files may each start one against the shared apiserver at the
// same time: leader election (short lease) makes exactly one of them act, and
// the leader serves every namespace, so each file's Jobs are driven either way.
import { request } from 'node:https';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { freePort } from './ports.js';
import { startProcess, toolPath, type ManagedProcess } from './process.js';

/**
 * What a batch/v1 Job needs: the Job controller creates and counts the pods, the
 * garbage collector deletes them with their Job, pod GC removes terminated pods
 * beyond its threshold, ttl-after-finished honours ttlSecondsAfterFinished. And
 * the ResourceQuota controller: whichever file's manager leads serves them all,
 * so each runs every controller any file needs (a quota test must not wait on a
 * leader that does not count quotas).
 */
export const JOB_CONTROLLERS = [
  'job-controller',
  'garbage-collector-controller',
  'pod-garbage-collector-controller',
  'ttl-after-finished-controller',
  'resourcequota-controller',
];

const READY_TIMEOUT_MS = 90_000;

function healthz(url: string): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const req = request(url, { rejectUnauthorized: false, agent: false, timeout: 2_000 }, (res) => {
      res.resume();
      res.on('end', () => resolvePromise(res.statusCode === 200));
      res.on('error', () => resolvePromise(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolvePromise(false));
    req.end();
  });
}

export async function startControllerManager(opts: {
  workDir: string;
  /** Kubeconfig of an identity allowed to do what the controllers do (the admin one is fine for a test stand-in). */
  kubeconfig: string;
  controllers?: string[];
}): Promise<ManagedProcess> {
  const workDir = resolve(opts.workDir);
  const logDir = join(workDir, 'logs');
  const certDir = join(workDir, 'certs');
  await mkdir(logDir, { recursive: true, mode: 0o700 });
  await mkdir(certDir, { recursive: true, mode: 0o700 });
  const port = await freePort();
  return startProcess({
    name: 'kube-controller-manager',
    command: toolPath('kube-controller-manager'),
    args: [
      `--kubeconfig=${opts.kubeconfig}`,
      `--controllers=${(opts.controllers ?? JOB_CONTROLLERS).join(',')}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      `--cert-dir=${certDir}`,
      // Every controller uses the kubeconfig's identity: no token controller runs to mint per-controller ones.
      '--use-service-account-credentials=false',
      '--leader-elect=true',
      '--leader-elect-lease-duration=4s',
      '--leader-elect-renew-deadline=3s',
      '--leader-elect-retry-period=1s',
      // Pods are picked up in well under a second (the default sync is fine, the default job backoff is 10 s).
      '--concurrent-job-syncs=5',
      '--profiling=false',
      '--v=1',
    ],
    logDir,
    ready: () => healthz(`https://127.0.0.1:${port}/healthz`),
    timeoutMs: READY_TIMEOUT_MS,
  });
}
