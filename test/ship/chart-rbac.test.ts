// RBAC as consent, as the chart installs it (issue 19 item 6): by default the
// operator may create batch Jobs in no namespace; workers.namespaces binds the
// workers ClusterRole in each listed namespace (each with its own worker
// ServiceAccount annotations); watchNamespace turns the operator's rules into a
// Role there, Secrets included. Asked of the real kube-apiserver with
// `kubectl auth can-i --as=<the operator's ServiceAccount>` after a real helm install.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createNamespace, kubectl, waitUntil } from '../harness/context.js';
import { CHART, helm, helmTemplate, parseObjects } from './tools.js';

/** `kubectl auth can-i VERB RESOURCE -n NS --as=USER [--subresource=SUB]`: "yes" or "no". */
async function canI(user: string, verb: string, resource: string, ns: string, subresource?: string): Promise<string> {
  const sub = subresource ? [`--subresource=${subresource}`] : [];
  const res = await kubectl(['auth', 'can-i', verb, resource, '-n', ns, `--as=${user}`, ...sub], {
    allowFailure: true,
  });
  return res.stdout.trim();
}

describe('the chart: RBAC as consent for worker pods (helm install, kubectl auth can-i)', () => {
  let ns: string;
  let tenant: string;
  const releases: string[] = [];
  let scopedOperator = '';
  const kubeconfig = (): string => inject('kube').adminKubeconfig;

  beforeAll(async () => {
    ns = await createNamespace('ship-rbac');
    tenant = await createNamespace('ship-tenant');
  });
  afterAll(async () => {
    for (const r of releases) await helm(['uninstall', r, '-n', ns], { kubeconfig: kubeconfig(), allowFailure: true });
    for (const n of [ns, tenant])
      if (n) await kubectl(['delete', 'namespace', n, '--wait=false'], { allowFailure: true });
  });

  async function install(release: string, args: string[]): Promise<string> {
    const out = await helm(
      ['install', release, CHART, '-n', ns, '--set', 'crds.install=false', '--wait=false', ...args],
      { kubeconfig: kubeconfig() },
    );
    releases.push(release);
    expect(out.stdout).toContain('STATUS: deployed');
    return `system:serviceaccount:${ns}:${release}-s3-encryption-operator`;
  }

  it('defaults: kubectl auth can-i create jobs -n kube-system answers no, and in every other namespace', async () => {
    const operator = await install('s3eo-consent', []);
    expect(await canI(operator, 'create', 'jobs', 'kube-system')).toBe('no');
    expect(await canI(operator, 'create', 'jobs', tenant)).toBe('no');
    expect(await canI(operator, 'get', 'serviceaccounts', 'kube-system')).toBe('no');
    // What it still may do everywhere it watches (docs/install.md says so): its jobs' Secrets and status.
    expect(await canI(operator, 'get', 'secrets', 'kube-system')).toBe('yes');
    expect(await canI(operator, 'watch', 'encryptionjobs.s3encryption.dev', tenant)).toBe('yes');
    // Its jobs' shards (EncryptionShard objects), which it plans, runs and deletes.
    for (const verb of ['create', 'watch', 'delete'])
      expect(await canI(operator, verb, 'encryptionshards.s3encryption.dev', tenant), verb).toBe('yes');
    expect(await canI(operator, 'patch', 'encryptionshards.s3encryption.dev', tenant, 'status')).toBe('yes');
    expect(await canI(operator, 'update', 'encryptionshards.s3encryption.dev', tenant)).toBe('no');
  });

  it('workers.namespaces and watchNamespace: Jobs only in the namespace that allowed them, Secrets only there', async () => {
    const operator = await install('s3eo-scoped', [
      '--set',
      `watchNamespace=${tenant}`,
      '--set',
      `workers.namespaces[0].name=${tenant}`,
      '--set',
      `workers.namespaces[0].serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::111122223333:role/${tenant}`,
      '--set',
      'workers.serviceAccountName=s3eo-scoped-worker',
      '--set',
      'workers.admissionPolicy.enabled=true',
      '--set',
      'image.repository=registry.example/s3eo',
    ]);
    scopedOperator = operator;
    expect(await canI(operator, 'create', 'jobs', tenant)).toBe('yes');
    expect(await canI(operator, 'delete', 'jobs', tenant)).toBe('yes');
    expect(await canI(operator, 'create', 'jobs', 'kube-system')).toBe('no');
    expect(await canI(operator, 'create', 'jobs', ns)).toBe('no');
    expect(await canI(operator, 'get', 'secrets', tenant)).toBe('yes');
    expect(await canI(operator, 'get', 'secrets', 'kube-system')).toBe('no');
    expect(await canI(operator, 'list', 'encryptionjobs.s3encryption.dev', 'kube-system')).toBe('no');
    expect(await canI(operator, 'list', 'encryptionshards.s3encryption.dev', 'kube-system')).toBe('no');
    expect(await canI(operator, 'create', 'encryptionshards.s3encryption.dev', tenant)).toBe('yes');
    // The worker pods' ServiceAccount: make their job's shards and write their status, nothing more.
    const worker = `system:serviceaccount:${tenant}:s3eo-scoped-worker`;
    expect(await canI(worker, 'create', 'encryptionshards.s3encryption.dev', tenant)).toBe('yes');
    expect(await canI(worker, 'get', 'encryptionshards.s3encryption.dev', tenant)).toBe('yes');
    expect(await canI(worker, 'patch', 'encryptionshards.s3encryption.dev', tenant, 'status')).toBe('yes');
    expect(await canI(worker, 'delete', 'encryptionshards.s3encryption.dev', tenant)).toBe('no');
    expect(await canI(worker, 'list', 'encryptionshards.s3encryption.dev', tenant)).toBe('no');
    expect(await canI(worker, 'create', 'encryptionshards.s3encryption.dev', ns)).toBe('no');
    const sa = JSON.parse(
      (await kubectl(['get', 'serviceaccount', 's3eo-scoped-worker', '-n', tenant, '-o', 'json'])).stdout,
    ) as { metadata: { labels: Record<string, string>; annotations: Record<string, string> } };
    expect(sa.metadata.labels['s3encryption.dev/worker']).toBe('true');
    expect(sa.metadata.annotations['eks.amazonaws.com/role-arn']).toBe(`arn:aws:iam::111122223333:role/${tenant}`);
  });

  it('workers.admissionPolicy: from the operator, only Jobs shaped as its worker Jobs are admitted (ValidatingAdmissionPolicy)', async () => {
    expect(scopedOperator).not.toBe('');
    const job = (mutate: (pod: Record<string, unknown>, c: Record<string, unknown>) => void): string => {
      const container: Record<string, unknown> = {
        name: 'worker',
        image: 'registry.example/s3eo:0.1.0',
        command: ['node', 'dist/worker.js', `--namespace=${tenant}`, '--job=x', '--generation=1'],
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        },
        volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
      };
      const pod: Record<string, unknown> = {
        restartPolicy: 'Never',
        serviceAccountName: 's3eo-scoped-worker',
        volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }],
        containers: [container],
      };
      mutate(pod, container);
      return JSON.stringify({
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: {
          name: 'x-workers',
          namespace: tenant,
          ownerReferences: [
            {
              apiVersion: 's3encryption.dev/v1alpha1',
              kind: 'EncryptionJob',
              name: 'x',
              uid: '00000000-0000-0000-0000-000000000001',
              controller: true,
            },
          ],
        },
        spec: { template: { spec: pod } },
      });
    };
    const create = (manifest: string) =>
      kubectl(['create', '--dry-run=server', '-f', '-', `--as=${scopedOperator}`], {
        input: manifest,
        allowFailure: true,
      });
    // The policy takes effect once the API server has loaded it.
    const denied = await waitUntil(
      'the policy to deny a hostNetwork Job',
      async () => {
        const r = await create(job((pod) => (pod.hostNetwork = true)));
        return r.code !== 0 && r.stderr.includes('ValidatingAdmissionPolicy') ? r : undefined;
      },
      60_000,
    );
    expect(denied.stderr).toContain('a worker Job shares no host namespace');
    const allowed = await create(job(() => undefined));
    expect(allowed.stderr).toBe('');
    expect(allowed.code).toBe(0);
    for (const [mutate, message] of [
      [
        (_p: Record<string, unknown>, c: Record<string, unknown>) => (c.image = 'busybox'),
        "the operator's image and its worker command",
      ],
      [
        (_p: Record<string, unknown>, c: Record<string, unknown>) => (c.command = ['sh', '-c', 'id']),
        'its worker command',
      ],
      [
        (p: Record<string, unknown>) => (p.volumes = [{ name: 'tmp', hostPath: { path: '/' } }]),
        'only emptyDir volumes',
      ],
      [
        (_p: Record<string, unknown>, c: Record<string, unknown>) =>
          (c.securityContext = { privileged: true, allowPrivilegeEscalation: true }),
        'runs unprivileged',
      ],
    ] as const) {
      const r = await create(job(mutate));
      expect(r.code, message).not.toBe(0);
      expect(r.stderr).toContain(message);
    }
    // Anyone else's Jobs are not looked at: the admin's hostNetwork Job passes this policy.
    const admin = await kubectl(['create', '--dry-run=server', '-f', '-'], {
      input: job((pod) => (pod.hostNetwork = true)),
      allowFailure: true,
    });
    expect(admin.stderr).toBe('');
  });

  it('each namespace its own worker identity: no role-arn shared between two namespaces', async () => {
    const objects = parseObjects(
      await helmTemplate([
        '--set',
        'workers.namespaces[0].name=a',
        '--set',
        'workers.namespaces[0].serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/a',
        '--set',
        'workers.namespaces[1]=b',
      ]),
    );
    const sas = objects.filter((o) => o.kind === 'ServiceAccount' && o.metadata.labels?.['s3encryption.dev/worker']);
    expect(sas.map((o) => [o.metadata.namespace, o.metadata.annotations])).toEqual([
      ['a', { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::1:role/a' }],
      ['b', undefined],
    ]);
  });

  it('refuses what would undo it: the removed shared annotations, replicaCount > 1 without leader election', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['--set', 'workers.serviceAccountAnnotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/all'],
        /workers.serviceAccountAnnotations is gone: .*workers.namespaces: \[\{name: data, serviceAccount: \{annotations/,
      ],
      [['--set', 'leaderElection.enabled=false'], /replicaCount=2 needs leaderElection.enabled=true/],
      [['--set', 'workers.namespaces[0]=Not_A_Namespace'], /workers.namespaces/],
      [['--set', 'workers.namespaces[0].nmae=data'], /workers.namespaces/],
      [
        ['--set', 'watchNamespace=data', '--set', 'workers.namespaces[0]=other'],
        /workers.namespaces lists "other", but the operator watches only "data"/,
      ],
    ];
    for (const [args, message] of cases) {
      const result = await helm(['template', 'x', CHART, ...args], { allowFailure: true });
      expect(result.code, args.join(' ')).not.toBe(0);
      expect(result.stderr, args.join(' ')).toMatch(message);
    }
    // One replica without leader election is fine.
    const one = await helm([
      'template',
      'x',
      CHART,
      '--set',
      'leaderElection.enabled=false',
      '--set',
      'replicaCount=1',
    ]);
    expect(one.code).toBe(0);
  });
});
