// A real Kubernetes control plane for the tests: etcd + kube-apiserver (built by
// test/env/build-kube.sh), started the way controller-runtime's envtest does it.
// There are no controllers, scheduler or kubelets: only the API, with RBAC.
//
// Two identities authenticate with static bearer tokens:
//  - admin:    user "s3eo-admin" in group system:masters (all access);
//  - operator: user "system:serviceaccount:s3-encryption-operator:s3-encryption-operator"
//              with no groups beyond system:authenticated, so it has only what RBAC
//              grants to that ServiceAccount (RBAC matches ServiceAccount subjects by
//              user name).
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import { freePorts } from './ports.js';
import { startProcess, toolPath, type ManagedProcess } from './process.js';

export const OPERATOR_NAMESPACE = 's3-encryption-operator';
export const OPERATOR_SERVICE_ACCOUNT = 's3-encryption-operator';
export const OPERATOR_USER = `system:serviceaccount:${OPERATOR_NAMESPACE}:${OPERATOR_SERVICE_ACCOUNT}`;
export const ADMIN_USER = 's3eo-admin';

export interface KubectlOptions {
  /** Kubeconfig file; defaults to the admin one. */
  kubeconfig?: string;
  /** Written to kubectl's standard input (for `apply -f -`). */
  input?: string;
  /** Resolve with the exit code instead of rejecting when it is not 0. */
  allowFailure?: boolean;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubeEnv {
  /** https://127.0.0.1:PORT */
  server: string;
  /** Kubeconfig file of an identity in group system:masters. */
  adminKubeconfig: string;
  /** Kubeconfig file of the operator's ServiceAccount user (only what RBAC grants it). */
  operatorKubeconfig: string;
  /** etcd's client URL (plain HTTP on loopback): its /metrics says what the apiserver wrote. */
  etcdUrl: string;
  kubectl(args: string[], opts?: KubectlOptions): Promise<KubectlResult>;
  /** Stops kube-apiserver and starts it again on the same port, with the same data. */
  restartApiserver(): Promise<void>;
  stop(): Promise<void>;
}

const APISERVER_READY_TIMEOUT_MS = 120_000;
const ETCD_READY_TIMEOUT_MS = 30_000;
const KUBECTL_TIMEOUT_MS = 120_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface HttpResult {
  status: number;
  body: string;
}

/** One HTTPS request to the apiserver with a bearer token (TLS not verified: used before the cert exists). */
function apiRequest(url: string, token: string, method = 'GET', body?: string, timeoutMs = 5_000): Promise<HttpResult> {
  return new Promise((resolvePromise, reject) => {
    const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    const req = request(
      url,
      { method, headers, rejectUnauthorized: false, agent: false, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolvePromise({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Plain-HTTP GET that resolves true on 200 (etcd's /health). */
function httpGetOk(url: string): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const req = httpGet(url, { timeout: 2_000, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolvePromise(res.statusCode === 200));
      res.on('error', () => resolvePromise(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolvePromise(false));
  });
}

function yamlString(value: string): string {
  return JSON.stringify(value);
}

function kubeconfigYaml(server: string, caData: string, user: string, token: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: s3eo-test',
    '  cluster:',
    `    server: ${yamlString(server)}`,
    `    certificate-authority-data: ${caData}`,
    'users:',
    `- name: ${yamlString(user)}`,
    '  user:',
    `    token: ${yamlString(token)}`,
    'contexts:',
    '- name: s3eo-test',
    '  context:',
    '    cluster: s3eo-test',
    `    user: ${yamlString(user)}`,
    'current-context: s3eo-test',
    '',
  ].join('\n');
}

function runKubectl(
  kubectlPath: string,
  args: string[],
  kubeconfig: string,
  cacheDir: string,
  input: string | undefined,
): Promise<KubectlResult> {
  return new Promise((resolvePromise, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, KUBECONFIG: kubeconfig };
    const child = spawn(kubectlPath, [`--kubeconfig=${kubeconfig}`, `--cache-dir=${cacheDir}`, ...args], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), KUBECTL_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      resolvePromise({
        code: code ?? (signal === 'SIGKILL' ? 137 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: signal === 'SIGKILL' ? `${stderr}\nkubectl killed after ${KUBECTL_TIMEOUT_MS} ms` : stderr,
      });
    });
    child.stdin.on('error', () => undefined); // kubectl may exit before reading its input
    child.stdin.end(input ?? '');
  });
}

export async function startKube(opts: { workDir: string }): Promise<KubeEnv> {
  const workDir = resolve(opts.workDir);
  const etcdBin = toolPath('etcd');
  const apiserverBin = toolPath('kube-apiserver');
  const kubectlBin = toolPath('kubectl');

  const logDir = join(workDir, 'logs');
  const etcdDataDir = join(workDir, 'etcd-data');
  const certDir = join(workDir, 'apiserver-certs');
  const authDir = join(workDir, 'auth');
  const kubectlCacheDir = join(workDir, 'kubectl-cache');
  for (const dir of [logDir, etcdDataDir, certDir, authDir, kubectlCacheDir]) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  }

  const [etcdClientPort, etcdPeerPort, apiPort] = (await freePorts(3)) as [number, number, number];
  const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
  const server = `https://127.0.0.1:${apiPort}`;

  // Static tokens: admin in system:masters, the operator's ServiceAccount user with no extra groups.
  const adminToken = randomBytes(24).toString('hex');
  const operatorToken = randomBytes(24).toString('hex');
  const tokenFile = join(authDir, 'tokens.csv');
  await writeFile(
    tokenFile,
    `${adminToken},${ADMIN_USER},s3eo-admin-uid,"system:masters"\n${operatorToken},${OPERATOR_USER},s3eo-operator-uid\n`,
    { mode: 0o600 },
  );

  // Service-account token signing key (no token controller runs, but the flags are required).
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const saKeyFile = join(authDir, 'sa.key');
  const saPubFile = join(authDir, 'sa.pub');
  await writeFile(saKeyFile, privateKey, { mode: 0o600 });
  await writeFile(saPubFile, publicKey, { mode: 0o600 });

  let etcd: ManagedProcess | undefined;
  let apiserver: ManagedProcess | undefined;
  let stopped = false;

  const stopAll = async (): Promise<void> => {
    const errors: unknown[] = [];
    for (const proc of [apiserver, etcd]) {
      if (proc === undefined) continue;
      try {
        await proc.stop();
      } catch (e) {
        errors.push(e);
      }
    }
    apiserver = undefined;
    etcd = undefined;
    if (errors.length > 0) throw new AggregateError(errors, 'stopping the kube control plane failed');
  };

  const apiserverArgs = [
    `--etcd-servers=${etcdUrl}`,
    '--advertise-address=127.0.0.1',
    '--bind-address=127.0.0.1',
    `--secure-port=${apiPort}`,
    `--cert-dir=${certDir}`,
    '--authorization-mode=RBAC',
    `--token-auth-file=${tokenFile}`,
    '--anonymous-auth=true', // /livez, /readyz, /version stay readable, as in a real cluster
    `--service-account-issuer=https://kubernetes.default.svc.cluster.local`,
    `--service-account-key-file=${saPubFile}`,
    `--service-account-signing-key-file=${saKeyFile}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    // No controller-manager runs: the ServiceAccount admission plugin would wait for
    // "default" ServiceAccounts that nothing creates.
    '--disable-admission-plugins=ServiceAccount',
    '--allow-privileged=true',
    '--profiling=false',
    '--v=1',
  ];

  const apiserverReady = async (): Promise<boolean> => {
    const res = await apiRequest(`${server}/readyz`, adminToken, 'GET', undefined, 2_000);
    return res.status === 200;
  };

  // The bootstrap controller creates "default" shortly after /readyz; create it ourselves if it lags.
  const waitForDefaultNamespace = async (): Promise<void> => {
    const deadline = Date.now() + 30_000;
    const createAfter = Date.now() + 5_000;
    let last = '';
    while (Date.now() < deadline) {
      const res = await apiRequest(`${server}/api/v1/namespaces/default`, adminToken);
      if (res.status === 200) return;
      last = `${res.status} ${res.body}`;
      if (res.status === 404 && Date.now() > createAfter) {
        const created = await apiRequest(
          `${server}/api/v1/namespaces`,
          adminToken,
          'POST',
          JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }),
        );
        if (created.status === 201 || created.status === 409) return;
        last = `${created.status} ${created.body}`;
      }
      await sleep(200);
    }
    throw new Error(`namespace "default" did not appear: ${last}`);
  };

  const startApiserver = async (): Promise<ManagedProcess> => {
    const proc = await startProcess({
      name: 'kube-apiserver',
      command: apiserverBin,
      args: apiserverArgs,
      logDir,
      ready: apiserverReady,
      timeoutMs: APISERVER_READY_TIMEOUT_MS,
    });
    try {
      await waitForDefaultNamespace();
    } catch (e) {
      await proc.stop();
      throw e;
    }
    return proc;
  };

  let adminKubeconfig = '';
  let operatorKubeconfig = '';
  try {
    etcd = await startProcess({
      name: 'etcd',
      command: etcdBin,
      args: [
        '--name=s3eo-test',
        `--data-dir=${etcdDataDir}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-cluster=s3eo-test=http://127.0.0.1:${etcdPeerPort}`,
        '--initial-cluster-state=new',
        '--unsafe-no-fsync=true',
        '--log-level=warn',
      ],
      logDir,
      ready: () => httpGetOk(`${etcdUrl}/health`),
      timeoutMs: ETCD_READY_TIMEOUT_MS,
    });

    apiserver = await startApiserver();

    // kube-apiserver wrote a self-signed serving cert (with its CA) into --cert-dir;
    // trusting that bundle lets clients verify TLS for 127.0.0.1.
    const servingCert = join(certDir, 'apiserver.crt');
    if (!existsSync(servingCert)) throw new Error(`kube-apiserver wrote no serving certificate at ${servingCert}`);
    const caData = readFileSync(servingCert).toString('base64');

    adminKubeconfig = join(authDir, 'admin.kubeconfig');
    operatorKubeconfig = join(authDir, 'operator.kubeconfig');
    await writeFile(adminKubeconfig, kubeconfigYaml(server, caData, ADMIN_USER, adminToken), { mode: 0o600 });
    await writeFile(operatorKubeconfig, kubeconfigYaml(server, caData, OPERATOR_USER, operatorToken), {
      mode: 0o600,
    });
  } catch (e) {
    await stopAll().catch(() => undefined);
    throw e;
  }

  const env: KubeEnv = {
    server,
    etcdUrl,
    adminKubeconfig,
    operatorKubeconfig,
    async kubectl(args, kopts = {}) {
      const result = await runKubectl(
        kubectlBin,
        args,
        kopts.kubeconfig ?? adminKubeconfig,
        kubectlCacheDir,
        kopts.input,
      );
      if (result.code !== 0 && kopts.allowFailure !== true) {
        throw new Error(`kubectl ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
      }
      return result;
    },
    async restartApiserver() {
      if (stopped) throw new Error('the kube control plane was stopped');
      if (apiserver !== undefined) {
        await apiserver.stop();
        apiserver = undefined;
      }
      apiserver = await startApiserver();
    },
    async stop() {
      stopped = true;
      await stopAll();
    },
  };
  return env;
}
