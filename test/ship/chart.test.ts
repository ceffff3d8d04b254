// The Helm chart: lint, render with the defaults and with every option on,
// the security and HA properties of the Deployment, the clear failure when
// monitoring CRDs are missing, the values schema, and every rendered object
// accepted by the real kube-apiserver (kubectl apply --dry-run=server).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createNamespace, kubectl } from '../harness/context.js';
import {
  ALL_OPTIONS,
  CHART,
  OTHER_OPTIONS,
  find,
  helm,
  helmTemplate,
  parseObjects,
  RELEASE_NAMESPACE,
  type K8sObject,
} from './tools.js';

interface Container {
  name: string;
  image: string;
  args: string[];
  env: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports: { name: string; containerPort: number }[];
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: {
    allowPrivilegeEscalation: boolean;
    readOnlyRootFilesystem: boolean;
    runAsNonRoot: boolean;
    capabilities: { drop: string[] };
  };
}
interface PodSpec {
  serviceAccountName: string;
  securityContext: { runAsNonRoot: boolean; runAsUser: number; seccompProfile: { type: string } };
  containers: Container[];
}
const podSpec = (d: K8sObject): PodSpec =>
  (d as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;

// Monitoring CRDs as small as the apiserver accepts: enough for a server-side dry run.
function monitoringCrd(kind: string, plural: string): string {
  return JSON.stringify({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.monitoring.coreos.com` },
    spec: {
      group: 'monitoring.coreos.com',
      scope: 'Namespaced',
      names: { kind, plural, listKind: `${kind}List`, singular: kind.toLowerCase() },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  });
}

describe('helm chart', () => {
  let defaults: K8sObject[];
  let everything: K8sObject[];

  beforeAll(async () => {
    defaults = parseObjects(await helmTemplate());
    everything = parseObjects(await helmTemplate(ALL_OPTIONS));
  });

  it('passes helm lint --strict, with the defaults and with every option on', async () => {
    const plain = await helm(['lint', '--strict', CHART]);
    expect(plain.stdout).toContain('0 chart(s) failed');
    // helm lint cannot announce API versions: the monitoring objects are linted by the renders below.
    const all = await helm(['lint', '--strict', CHART, ...OTHER_OPTIONS]);
    expect(all.stdout).toContain('0 chart(s) failed');
  });

  it('renders the operator objects by default, and no monitoring objects', () => {
    const kinds = defaults.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(kinds).toEqual([
      'ClusterRole/s3-encryption-operator',
      'ClusterRole/s3-encryption-operator-workers',
      'ClusterRoleBinding/s3-encryption-operator',
      'CustomResourceDefinition/encryptionjobs.s3encryption.dev',
      'CustomResourceDefinition/encryptionshards.s3encryption.dev',
      'Deployment/s3-encryption-operator',
      'PodDisruptionBudget/s3-encryption-operator',
      'Role/s3-encryption-operator-leader-election',
      'RoleBinding/s3-encryption-operator-leader-election',
      'Service/s3-encryption-operator-metrics',
      'ServiceAccount/s3-encryption-operator',
    ]);
    for (const o of defaults) {
      if (o.kind === 'CustomResourceDefinition' || o.kind.startsWith('Cluster'))
        expect(o.metadata.namespace).toBeUndefined();
      else expect(o.metadata.namespace, `${o.kind} namespace`).toBe(RELEASE_NAMESPACE);
    }
  });

  it('keeps both CRDs on helm uninstall unless crds.keep=false; crds.install=false leaves them out', async () => {
    const crds = (objects: K8sObject[]): K8sObject[] => objects.filter((o) => o.kind === 'CustomResourceDefinition');
    expect(crds(defaults)).toHaveLength(2);
    for (const crd of crds(defaults))
      expect(crd.metadata.annotations, crd.metadata.name).toEqual({ 'helm.sh/resource-policy': 'keep' });
    const noKeep = parseObjects(await helmTemplate(['--set', 'crds.keep=false']));
    expect(crds(noKeep)).toHaveLength(2);
    for (const crd of crds(noKeep)) expect(crd.metadata.annotations, crd.metadata.name).toBeUndefined();
    const noCrd = parseObjects(await helmTemplate(['--set', 'crds.install=false']));
    expect(noCrd.some((o) => o.kind === 'CustomResourceDefinition')).toBe(false);
    // Templates, not a chart crds/ directory (Helm installs those once and never upgrades them):
    // docs/install.md tells users that `helm upgrade` adds the EncryptionShard CRD.
    expect(existsSync(join(CHART, 'crds'))).toBe(false);
  });

  it('runs 2 leader-elected replicas, non-root, read-only, no capabilities, RuntimeDefault seccomp, with probes and POD_NAMESPACE', () => {
    const deployment = find(defaults, 'Deployment');
    expect((deployment as unknown as { spec: { replicas: number } }).spec.replicas).toBe(2);
    const pod = podSpec(deployment);
    expect(pod.serviceAccountName).toBe('s3-encryption-operator');
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(pod.securityContext.seccompProfile.type).toBe('RuntimeDefault');
    const [c] = pod.containers;
    if (!c) throw new Error('no container');
    expect(c.image).toBe('s3-encryption-operator:0.1.0');
    expect(c.args).toEqual(
      expect.arrayContaining([
        '--leader-elect',
        '--metrics-bind-address=:8080',
        '--health-probe-bind-address=:8081',
        '--stall-timeout=300',
      ]),
    );
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(c.ports).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'metrics', containerPort: 8080 }),
        expect.objectContaining({ name: 'health', containerPort: 8081 }),
      ]),
    );
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
    expect(c.resources.requests).toBeDefined();
    expect(c.resources.limits?.memory).toBeDefined();
    expect(c.env).toContainEqual({
      name: 'POD_NAMESPACE',
      valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } },
    });
    // Issue 20 scenario 7: inventory sorts spill to a sized volume whose size the operator is told
    // (the kubelet evicts a pod past an emptyDir's limit, which statfs does not show).
    expect(c.env).toContainEqual({ name: 'TMPDIR', value: '/var/spill' });
    expect(c.env).toContainEqual({ name: 'S3EO_SPILL_LIMIT_MIB', value: '2048' });
    expect(c.args).toContain('--worker-spill-mib=2048');
    expect((pod as unknown as { volumes: unknown[] }).volumes).toContainEqual({
      name: 'spill',
      emptyDir: { sizeLimit: '2048Mi' },
    });
    const service = find(defaults, 'Service') as unknown as { spec: { ports: { port: number; targetPort: string }[] } };
    expect(service.spec.ports).toEqual([
      expect.objectContaining({ name: 'metrics', port: 8080, targetPort: 'metrics' }),
    ]);
  });

  it('turns every option into the object it names', () => {
    const kinds = new Set(everything.map((o) => o.kind));
    for (const k of ['ServiceMonitor', 'PrometheusRule', 'ConfigMap']) expect(kinds, k).toContain(k);
    const crds = everything.filter((o) => o.kind === 'CustomResourceDefinition');
    expect(crds).toHaveLength(2);
    for (const crd of crds)
      expect(crd.metadata.annotations, crd.metadata.name).toEqual({
        'helm.sh/resource-policy': 'keep',
        'argocd.argoproj.io/sync-options': 'Prune=false,Delete=false',
      });
    const sa = find(everything, 'ServiceAccount');
    expect(sa.metadata.annotations).toEqual({
      'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/s3-encryption-operator',
    });
    const [c] = podSpec(find(everything, 'Deployment')).containers;
    expect(c?.image).toBe(`s3-encryption-operator@sha256:${'a'.repeat(64)}`);
    expect(c?.args).toEqual(
      expect.arrayContaining([
        '--watch-namespace=data',
        '--log-level=debug',
        '--stall-timeout=900',
        '--leader-election-namespace=s3-encryption-operator',
      ]),
    );
    expect(c?.env).toContainEqual({ name: 'AWS_REGION', value: 'eu-west-1' });
    // Tenancy: the admin's settings become the operator's flags (docs/install.md, "Multi-tenant clusters").
    expect(c?.args).toEqual(
      expect.arrayContaining([
        '--ambient-identity-namespaces=data,analytics',
        '--allowed-role-arns=data=arn:aws:iam::111122223333:role/encrypt-data-*',
        '--allowed-report-destinations=s3://audit-reports/*',
        '--report-prefix=s3eo-reports/',
        '--allowed-endpoint-hosts=*.amazonaws.com',
        '--denied-endpoint-addresses=10.96.0.0/12',
      ]),
    );

    const monitor = find(everything, 'ServiceMonitor') as unknown as {
      metadata: { labels: Record<string, string> };
      spec: { endpoints: { port: string; path: string; honorLabels: boolean }[] };
    };
    expect(monitor.metadata.labels.release).toBe('prometheus');
    expect(monitor.spec.endpoints[0]).toMatchObject({ port: 'metrics', path: '/metrics', honorLabels: true });

    const rule = find(everything, 'PrometheusRule') as unknown as {
      spec: { groups: { rules: { alert: string; annotations: { runbook_url: string } }[] }[] };
    };
    const alerts = rule.spec.groups.flatMap((g) => g.rules);
    expect(alerts.length).toBeGreaterThanOrEqual(6);
    for (const a of alerts)
      expect(a.annotations.runbook_url, a.alert).toMatch(/^https:\/\/runbooks\.example\.com\/s3eo\/[a-z-]+\.md$/);

    const dashboard = find(everything, 'ConfigMap');
    expect(dashboard.metadata.labels?.grafana_dashboard).toBe('1');
    expect(dashboard.metadata.annotations).toEqual({ grafana_folder: 'S3' });
    const json = JSON.parse(
      (dashboard as unknown as { data: Record<string, string> }).data['s3-encryption-operator.json'] ?? '',
    ) as { uid: string };
    expect(json.uid).toBe('s3-encryption-operator');
  });

  it.each([
    ['serviceMonitor.enabled', 'ServiceMonitor'],
    ['prometheusRule.enabled', 'PrometheusRule'],
  ])('fails with a clear message when %s=true but the cluster has no %s CRD', async (flag, kind) => {
    const result = await helm(['template', 'x', CHART, '--set', `${flag}=true`], { allowFailure: true });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`${flag}=true, but this cluster does not serve monitoring.coreos.com/v1 ${kind}`);
    expect(result.stderr).toContain('install the Prometheus Operator CRDs first');
  });

  it('rejects values the schema does not allow, naming the value', async () => {
    const cases: [string[], RegExp][] = [
      [['--set', 'logLevel=loud'], /logLevel/],
      [['--set', 'replicaCount=-1'], /replicaCount/],
      [['--set', 'serviceMonitor.enable=true'], /serviceMonitor/],
      [['--set', 'image.digest=latest'], /digest/],
      [['--set', 'terminationGracePeriodSeconds=5'], /terminationGracePeriodSeconds/],
      [['--set', 'stallTimeoutSeconds=5'], /stallTimeoutSeconds/],
    ];
    for (const [args, message] of cases) {
      const result = await helm(['template', 'x', CHART, ...args], { allowFailure: true });
      expect(result.code, args.join(' ')).not.toBe(0);
      expect(result.stderr, args.join(' ')).toMatch(message);
    }
  });

  describe('against the real kube-apiserver', () => {
    let namespace: string;
    beforeAll(async () => {
      namespace = await createNamespace('ship-chart');
      for (const [kind, plural] of [
        ['ServiceMonitor', 'servicemonitors'],
        ['PrometheusRule', 'prometheusrules'],
      ] as const) {
        await kubectl(['apply', '-f', '-'], { input: monitoringCrd(kind, plural) });
      }
      await kubectl([
        'wait',
        '--for=condition=Established',
        '--timeout=60s',
        'crd/servicemonitors.monitoring.coreos.com',
        'crd/prometheusrules.monitoring.coreos.com',
      ]);
    });
    afterAll(async () => {
      if (namespace) await kubectl(['delete', 'namespace', namespace, '--wait=false'], { allowFailure: true });
    });

    it.each([
      ['the defaults', [] as string[]],
      ['every option on', ALL_OPTIONS],
    ])('accepts every object rendered with %s (apply --dry-run=server)', async (_label, args) => {
      // watchNamespace puts the operator's Role in that namespace: one that exists here.
      const watch = args.length ? ['--set', `watchNamespace=${namespace}`] : [];
      const rendered = await helmTemplate(['--set', 'dashboard.namespace=', ...args, ...watch], 's3eo-ship', namespace);
      const result = await kubectl(['apply', '--dry-run=server', '-f', '-'], { input: rendered, allowFailure: true });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const lines = result.stdout.trim().split('\n');
      expect(lines.length).toBe(parseObjects(rendered).length);
      for (const line of lines) expect(line).toMatch(/\(server dry run\)$/);
    });

    it('prints NOTES.txt with the next steps (helm install --dry-run)', async () => {
      // (The shared test cluster already has the CRD, not owned by a release: leave it out.)
      const install = await helm(
        ['install', 's3eo-notes', CHART, '-n', namespace, '--dry-run=client', '--set', 'crds.install=false'],
        {
          kubeconfig: inject('kube').adminKubeconfig,
        },
      );
      expect(install.stdout).toContain('NOTES:');
      expect(install.stdout).toContain(
        `kubectl -n ${namespace} rollout status deployment/s3eo-notes-s3-encryption-operator`,
      );
      expect(install.stdout).toContain('did not install the EncryptionJob and EncryptionShard CRDs');
      expect(install.stdout).toContain('dryRun: true');
      expect(install.stdout).toContain('--set serviceAccount.annotations.eks');
    });

    it('installs for real with helm (CRD left to crds/), and uninstalls', async () => {
      const release = 's3eo-ship-install';
      const kubeconfig = inject('kube').adminKubeconfig;
      const install = await helm(
        [
          'install',
          release,
          CHART,
          '-n',
          namespace,
          '--set',
          'crds.install=false',
          '--set',
          'dashboard.enabled=true',
          '--wait=false',
        ],
        { kubeconfig },
      );
      expect(install.stdout).toContain('STATUS: deployed');
      const role = await kubectl(['get', 'clusterrole', `${release}-s3-encryption-operator`, '-o', 'json']);
      const source = await kubectl(['get', 'clusterrole', 's3-encryption-operator', '-o', 'json']);
      expect((JSON.parse(role.stdout) as { rules: unknown }).rules).toEqual(
        (JSON.parse(source.stdout) as { rules: unknown }).rules,
      );
      await kubectl(['get', 'deployment', `${release}-s3-encryption-operator`, '-n', namespace]);
      await kubectl(['get', 'configmap', `${release}-s3-encryption-operator-dashboard`, '-n', namespace]);
      await helm(['uninstall', release, '-n', namespace], { kubeconfig });
      const gone = await kubectl(['get', 'clusterrole', `${release}-s3-encryption-operator`], { allowFailure: true });
      expect(gone.code).not.toBe(0);
    });
  });
});
