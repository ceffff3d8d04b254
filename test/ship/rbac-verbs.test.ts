// Least privilege, checked both ways: every verb the chart (defaults and every
// option on) and deploy/ (kubectl kustomize, and the raw deploy/rbac files the
// integration tests apply) grant is a call the code makes, and every call the
// code makes is granted -- with src/controller/kube-verbs.ts as the table in
// between, itself checked against the source. Leases are a Role in the
// operator's namespace, never a ClusterRole. Jobs and ServiceAccounts are in the
// workers ClusterRole only, which nothing binds cluster-wide: a namespace binds it
// to allow worker pods (RBAC as consent).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KUBE_CALLS, WORKER_CALLS } from '../../src/controller/kube-verbs.js';
import { toolPath } from '../harness/process.js';
import {
  ALL_OPTIONS,
  WORKER_OPTIONS,
  helmTemplate,
  parseObjects,
  RELEASE_NAMESPACE,
  ROOT,
  run,
  type K8sObject,
} from './tools.js';

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
}

type Scope = 'cluster' | 'operator-namespace' | 'worker-namespace';

const WORKERS_ROLE = /-workers$/;
const LEADER_ROLE = /-leader-election$/;

/** The Role of the worker pods (spec.workers), in a job's namespace: checked against WORKER_CALLS. */
function isWorkerRole(o: K8sObject): boolean {
  return (
    o.kind === 'Role' &&
    (o.metadata.labels?.['app.kubernetes.io/component'] === 'worker' || o.metadata.name === 's3-encryption-worker')
  );
}

/**
 * "scope group/resource verb" for every verb of every rule of every (Cluster)Role: the workers
 * ClusterRole is worker-namespace, the leader-election Role operator-namespace, and the operator's
 * own rules (a ClusterRole, or a Role in watchNamespace) cluster.
 */
function grants(objects: K8sObject[], watchNamespace = ''): string[] {
  const out: string[] = [];
  for (const o of objects) {
    if (o.kind !== 'ClusterRole' && o.kind !== 'Role') continue;
    if (isWorkerRole(o)) continue;
    let scope: Scope = 'cluster';
    if (o.kind === 'ClusterRole' && WORKERS_ROLE.test(o.metadata.name)) scope = 'worker-namespace';
    else if (o.kind === 'Role' && LEADER_ROLE.test(o.metadata.name)) {
      scope = 'operator-namespace';
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(RELEASE_NAMESPACE);
    } else if (o.kind === 'Role') expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(watchNamespace);
    for (const r of (o.rules as Rule[] | undefined) ?? []) {
      for (const g of r.apiGroups ?? [])
        for (const res of r.resources ?? []) for (const v of r.verbs ?? []) out.push(`${scope} ${g}/${res} ${v}`);
    }
  }
  return [...new Set(out)].sort();
}

/** The workers ClusterRole is bound by RoleBindings in the namespaces that allow worker pods, never cluster-wide. */
function checkWorkersConsent(objects: K8sObject[], what: string, namespaces: string[]): void {
  const role = objects.find((o) => o.kind === 'ClusterRole' && WORKERS_ROLE.test(o.metadata.name));
  expect(role, `${what}: the workers ClusterRole`).toBeDefined();
  const name = role?.metadata.name;
  const refs = (o: K8sObject): { kind: string; name: string } => o.roleRef as { kind: string; name: string };
  const clusterWide = objects.filter((o) => o.kind === 'ClusterRoleBinding' && refs(o).name === name);
  expect(clusterWide, `${what}: the workers ClusterRole bound cluster-wide`).toEqual([]);
  const bindings = objects.filter((o) => o.kind === 'RoleBinding' && refs(o).name === name);
  expect(bindings.map((b) => b.metadata.namespace).sort(), `${what}: namespaces that allow worker pods`).toEqual(
    [...namespaces].sort(),
  );
  for (const b of bindings) {
    expect(refs(b).kind).toBe('ClusterRole');
    expect(b.subjects).toEqual([
      { kind: 'ServiceAccount', name: 's3-encryption-operator', namespace: RELEASE_NAMESPACE },
    ]);
  }
}

// every-user calls (asking the API server about oneself) are granted by Kubernetes' own system:basic-user.
const used = [
  ...new Set(
    KUBE_CALLS.filter((c) => c.scope !== 'every-user').map((c) => `${c.scope} ${c.group}/${c.resource} ${c.verb}`),
  ),
].sort();
const workerUsed = [...new Set(WORKER_CALLS.map((c) => `${c.group}/${c.resource} ${c.verb}`))].sort();

/** Every worker Role grants exactly what a worker calls, and is bound only to a marked ServiceAccount. */
function checkWorkerRoles(objects: K8sObject[], what: string, namespaces: string[]): void {
  const roles = objects.filter(isWorkerRole);
  expect(roles.map((r) => r.metadata.namespace).sort(), `${what}: worker Roles`).toEqual([...namespaces].sort());
  for (const role of roles) {
    const granted = ((role.rules as Rule[] | undefined) ?? []).flatMap((r) =>
      (r.apiGroups ?? []).flatMap((g) =>
        (r.resources ?? []).flatMap((res) => (r.verbs ?? []).map((v) => `${g}/${res} ${v}`)),
      ),
    );
    expect([...new Set(granted)].sort(), `${what}: worker Role in ${role.metadata.namespace}`).toEqual(workerUsed);
    const binding = objects.find(
      (o) =>
        o.kind === 'RoleBinding' &&
        o.metadata.namespace === role.metadata.namespace &&
        (o.roleRef as { name: string }).name === role.metadata.name,
    );
    const subjects = (binding?.subjects as { kind: string; name: string; namespace: string }[] | undefined) ?? [];
    expect(subjects).toHaveLength(1);
    const sa = objects.find(
      (o) =>
        o.kind === 'ServiceAccount' &&
        o.metadata.name === subjects[0]?.name &&
        o.metadata.namespace === role.metadata.namespace,
    );
    expect(sa?.metadata.labels?.['s3encryption.dev/worker'], `${what}: the bound ServiceAccount is marked`).toBe(
      'true',
    );
    expect(subjects[0]?.namespace).toBe(role.metadata.namespace);
  }
}

function checkBothWays(objects: K8sObject[], what: string, watchNamespace = ''): void {
  const granted = grants(objects, watchNamespace);
  const unused = granted.filter((g) => !used.includes(g));
  const missing = used.filter((u) => !granted.includes(u));
  expect(unused, `${what} grants verbs the code never calls (src/controller/kube-verbs.ts)`).toEqual([]);
  expect(missing, `${what} lacks verbs the code calls`).toEqual([]);
  for (const o of objects.filter((x) => x.kind === 'ClusterRole')) {
    for (const r of (o.rules as Rule[]) ?? [])
      expect(r.resources, `${what}: leases in a ClusterRole`).not.toContain('leases');
    expect(
      (o.rules as Rule[]).flatMap((r) => r.verbs ?? []),
      `${what}: wildcard verb`,
    ).not.toContain('*');
  }
  // get and update of the Lease are limited to its name; only create cannot be.
  const role = objects.find((x) => x.kind === 'Role' && LEADER_ROLE.test(x.metadata.name));
  const named = ((role?.rules as Rule[] | undefined) ?? []).filter((r) => r.verbs?.some((v) => v !== 'create'));
  for (const r of named)
    expect(r.resourceNames, `${what}: Lease rule without resourceNames`).toEqual(['s3-encryption-operator']);
}

describe('RBAC: every granted verb is used, every used verb is granted', () => {
  it('the table matches the source: each client-node call in src/ is a row, each row is called', () => {
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name));
        else if (e.name.endsWith('.ts') && e.name !== 'kube-verbs.ts') files.push(join(dir, e.name));
      }
    };
    walk(join(ROOT, 'src'));
    const called = new Set<string>();
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/\.(?:api|core|custom|coordination|batch|authorization|authentication)\.(\w+)\(/g))
        called.add(m[1] ?? '');
      if (/\bmakeInformer\b/.test(text) && /makeInformer\s*</.test(text)) called.add('makeInformer');
    }
    const listed = new Set([...KUBE_CALLS, ...WORKER_CALLS].map((c) => c.method));
    expect([...called].filter((m) => !listed.has(m)).sort(), 'calls missing from src/controller/kube-verbs.ts').toEqual(
      [],
    );
    expect(
      [...listed].filter((m) => !called.has(m)).sort(),
      'rows of src/controller/kube-verbs.ts nothing calls',
    ).toEqual([]);
  });

  it('helm template, with the defaults: no namespace allows worker pods', async () => {
    const objects = parseObjects(await helmTemplate());
    checkBothWays(objects, 'the chart (defaults)');
    checkWorkersConsent(objects, 'the chart (defaults)', []);
  });

  it('helm template, with every option on (watchNamespace: a Role there, no ClusterRole with Secrets)', async () => {
    const objects = parseObjects(await helmTemplate([...ALL_OPTIONS, '--set', 'workers.namespaces[0]=data']));
    checkBothWays(objects, 'the chart (all options)', 'data');
    checkWorkerRoles(objects, 'the chart (all options)', ['data']);
    checkWorkersConsent(objects, 'the chart (all options)', ['data']);
    const clusterRoles = objects.filter((o) => o.kind === 'ClusterRole').map((o) => o.metadata.name);
    expect(clusterRoles).toEqual(['s3-encryption-operator-workers']);
  });

  it('helm template, with workers.namespaces (each its own annotations; the old list of names too)', async () => {
    const objects = parseObjects(await helmTemplate(WORKER_OPTIONS));
    checkBothWays(objects, 'the chart (workers.namespaces)');
    checkWorkerRoles(objects, 'the chart (workers.namespaces)', ['data', 'analytics', 'archive']);
    checkWorkersConsent(objects, 'the chart (workers.namespaces)', ['data', 'analytics', 'archive']);
  });

  it('the worker RBAC of deploy/workers (kubectl kustomize): exactly the calls a worker pod makes', async () => {
    const built = await run(toolPath('kubectl'), ['kustomize', join(ROOT, 'deploy', 'workers')]);
    const objects = parseObjects(built.stdout);
    checkWorkerRoles(objects, 'deploy/workers', ['data']);
    // The namespace's consent binds the ClusterRole that deploy/rbac ships (not in this kustomization).
    checkWorkersConsent(
      [...objects, ...parseObjects(readFileSync(join(ROOT, 'deploy', 'rbac', 'role_workers.yaml'), 'utf8'))],
      'deploy/workers',
      ['data'],
    );
  });

  it('kubectl kustomize deploy/', async () => {
    const built = await run(toolPath('kubectl'), ['kustomize', join(ROOT, 'deploy')]);
    checkBothWays(parseObjects(built.stdout), 'deploy/ (kustomize)');
    checkWorkersConsent(parseObjects(built.stdout), 'deploy/ (kustomize)', []);
  });

  it('the raw deploy/rbac files (what the integration tests run the operator with)', () => {
    const dir = join(ROOT, 'deploy', 'rbac');
    const objects = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .flatMap((f) => parseObjects(readFileSync(join(dir, f), 'utf8')));
    checkBothWays(objects, 'deploy/rbac');
  });
});
