// Shared by the ship tests: running helm, kubectl, promtool, the Lua runner and
// npm as child processes, and reading multi-document YAML.
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../harness/context.js';
import { toolPath } from '../harness/process.js';

export { ROOT };
export const CHART = join(ROOT, 'helm', 's3-encryption-operator');
export const RELEASE = 's3-encryption-operator';
export const RELEASE_NAMESPACE = 's3-encryption-operator';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(
  command: string,
  args: string[],
  opts: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv; allowFailure?: boolean; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd: opts.cwd ?? ROOT,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const result = { code: code ?? -1, stdout, stderr };
      if (code !== 0 && !opts.allowFailure) {
        reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${stderr}\n${stdout.slice(-2000)}`));
      } else resolvePromise(result);
    });
    if (child.stdin) {
      // A tool may exit before reading all of its input: not an error of the test.
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input);
    }
  });
}

export function helm(args: string[], opts: { allowFailure?: boolean; kubeconfig?: string } = {}): Promise<RunResult> {
  // No user config leaks in: helm's caches go to a throwaway place.
  const env = {
    ...process.env,
    HELM_CACHE_HOME: join(tmpdir(), 's3eo-helm', 'cache'),
    HELM_CONFIG_HOME: join(tmpdir(), 's3eo-helm', 'config'),
    HELM_DATA_HOME: join(tmpdir(), 's3eo-helm', 'data'),
    ...(opts.kubeconfig ? { KUBECONFIG: opts.kubeconfig } : {}),
  };
  return run(toolPath('helm'), args, { env, ...(opts.allowFailure ? { allowFailure: true } : {}) });
}

/** `helm template` of the chart; extra args are passed through (--set, --api-versions...). */
export async function helmTemplate(
  args: string[] = [],
  release = RELEASE,
  namespace = RELEASE_NAMESPACE,
): Promise<string> {
  return (await helm(['template', release, CHART, '--namespace', namespace, ...args])).stdout;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

export function parseObjects(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new Error(`invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as K8sObject | null;
    if (value) out.push(value);
  }
  return out;
}

export function find(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (!found)
    throw new Error(
      `no ${kind}${name ? ` ${name}` : ''} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`,
    );
  return found;
}

/** The monitoring options, with the monitoring CRDs announced to `helm template`. */
export const MONITORING_OPTIONS = [
  '--api-versions',
  'monitoring.coreos.com/v1/ServiceMonitor',
  '--api-versions',
  'monitoring.coreos.com/v1/PrometheusRule',
  '--set',
  'serviceMonitor.enabled=true',
  '--set',
  'serviceMonitor.labels.release=prometheus',
  '--set',
  'prometheusRule.enabled=true',
  '--set',
  'prometheusRule.labels.release=prometheus',
  '--set',
  'prometheusRule.runbookBaseUrl=https://runbooks.example.com/s3eo/',
];

/** Every other option of the chart turned on. */
export const OTHER_OPTIONS = [
  '--set',
  'dashboard.enabled=true',
  '--set',
  'crds.annotations.argocd\\.argoproj\\.io/sync-options=Prune=false\\,Delete=false',
  '--set',
  'dashboard.annotations.grafana_folder=S3',
  '--set',
  'serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::111122223333:role/s3-encryption-operator',
  '--set',
  'aws.region=eu-west-1',
  '--set',
  'watchNamespace=data',
  '--set',
  'logLevel=debug',
  '--set',
  'stallTimeoutSeconds=900',
  '--set',
  'replicaCount=3',
  '--set',
  'image.digest=sha256:' + 'a'.repeat(64),
  '--set',
  'imagePullSecrets[0].name=regcred',
  '--set',
  'priorityClassName=system-cluster-critical',
  '--set',
  'extraEnv[0].name=AWS_STS_REGIONAL_ENDPOINTS',
  '--set',
  'extraEnv[0].value=regional',
  '--set',
  'extraArgs[0]=--leader-election-namespace=s3-encryption-operator',
  '--set',
  'podAnnotations.team=storage',
  '--set',
  'podLabels.tier=platform',
  '--set',
  'nodeSelector.kubernetes\\.io/os=linux',
  '--set',
  'tolerations[0].key=dedicated',
  '--set',
  'tolerations[0].operator=Exists',
  '--set',
  'metrics.service.annotations.note=metrics',
  '--set',
  'tenancy.ambientIdentityNamespaces[0]=data',
  '--set',
  'tenancy.ambientIdentityNamespaces[1]=analytics',
  '--set',
  'tenancy.allowedRoleArns.data[0]=arn:aws:iam::111122223333:role/encrypt-data-*',
  '--set',
  'tenancy.allowedReportDestinations[0]=s3://audit-reports/*',
  '--set',
  'tenancy.reportPrefix=s3eo-reports/',
  '--set',
  'tenancy.allowedEndpointHosts[0]=*.amazonaws.com',
  '--set',
  'tenancy.deniedEndpointAddresses[0]=10.96.0.0/12',
  '--set',
  'workers.admissionPolicy.enabled=true',
];

/**
 * The worker RBAC per namespace (spec.workers), each namespace with its own IAM role, one in the old
 * list-of-names form; namespaces the test apiserver does not have, so rendered only.
 */
export const WORKER_OPTIONS = [
  '--set',
  'workers.namespaces[0].name=data',
  '--set',
  'workers.namespaces[0].serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::111122223333:role/encrypt-data',
  '--set',
  'workers.namespaces[1].name=analytics',
  '--set',
  'workers.namespaces[1].serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::111122223333:role/encrypt-analytics',
  '--set',
  'workers.namespaces[2]=archive',
  '--set',
  'workers.jobTTLSecondsAfterFinished=3600',
];

export const ALL_OPTIONS = [...MONITORING_OPTIONS, ...OTHER_OPTIONS];
