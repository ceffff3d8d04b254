// Every Kubernetes API call the operator makes, as the RBAC verb it needs.
// This table is the contract between the code and deploy/rbac (and the chart):
// test/ship/rbac-verbs.test.ts checks it both ways against the rendered
// manifests (no verb granted that is not here, nothing here not granted) and
// against the source (every client-node method the code calls is listed here,
// and every method listed here is called). Add a row when you add a call.

export interface KubeCall {
  /** The client-node method (or the informer) that makes the call. */
  method: string;
  group: string;
  resource: string;
  verb: string;
  /** cluster: a ClusterRole (jobs live in any namespace); operator-namespace: a Role in the operator's own namespace. */
  scope: 'cluster' | 'operator-namespace';
}

export const KUBE_CALLS: readonly KubeCall[] = [
  // KubeClient (src/controller/kubeclient.ts) and the informer (manager.ts).
  {
    method: 'listCustomObjectForAllNamespaces',
    group: 's3encryption.dev',
    resource: 'encryptionjobs',
    verb: 'list',
    scope: 'cluster',
  },
  {
    method: 'listNamespacedCustomObject',
    group: 's3encryption.dev',
    resource: 'encryptionjobs',
    verb: 'list',
    scope: 'cluster',
  },
  { method: 'makeInformer', group: 's3encryption.dev', resource: 'encryptionjobs', verb: 'watch', scope: 'cluster' },
  {
    method: 'getNamespacedCustomObject',
    group: 's3encryption.dev',
    resource: 'encryptionjobs',
    verb: 'get',
    scope: 'cluster',
  },
  {
    method: 'patchNamespacedCustomObject',
    group: 's3encryption.dev',
    resource: 'encryptionjobs',
    verb: 'patch',
    scope: 'cluster',
  },
  {
    method: 'patchNamespacedCustomObjectStatus',
    group: 's3encryption.dev',
    resource: 'encryptionjobs/status',
    verb: 'patch',
    scope: 'cluster',
  },
  // Always the job's own namespace (reconciler.ts credentials()).
  { method: 'readNamespacedSecret', group: '', resource: 'secrets', verb: 'get', scope: 'cluster' },
  // >>> Waiting for a Secret that does not exist yet (controller robustness work) may add
  // >>> list/watch on secrets here, with the same rows in deploy/rbac/role.yaml.
  { method: 'createNamespacedEvent', group: '', resource: 'events', verb: 'create', scope: 'cluster' },
  // spec.workers (workerrun.ts): the marked ServiceAccount is checked, the worker Job created, read and deleted.
  { method: 'readNamespacedServiceAccount', group: '', resource: 'serviceaccounts', verb: 'get', scope: 'cluster' },
  { method: 'readNamespacedJob', group: 'batch', resource: 'jobs', verb: 'get', scope: 'cluster' },
  { method: 'createNamespacedJob', group: 'batch', resource: 'jobs', verb: 'create', scope: 'cluster' },
  { method: 'deleteNamespacedJob', group: 'batch', resource: 'jobs', verb: 'delete', scope: 'cluster' },
  // Leader election (leader.ts): the Lease in the operator's namespace only.
  {
    method: 'readNamespacedLease',
    group: 'coordination.k8s.io',
    resource: 'leases',
    verb: 'get',
    scope: 'operator-namespace',
  },
  {
    method: 'createNamespacedLease',
    group: 'coordination.k8s.io',
    resource: 'leases',
    verb: 'create',
    scope: 'operator-namespace',
  },
  {
    method: 'replaceNamespacedLease',
    group: 'coordination.k8s.io',
    resource: 'leases',
    verb: 'update',
    scope: 'operator-namespace',
  },
];

/**
 * The calls a worker pod makes (src/worker.ts, workerpod.ts) with its
 * ServiceAccount: a Role in the job's namespace, bound to the marked
 * ServiceAccount (deploy/workers, the chart's workers.namespaces). A worker reads
 * its job and writes its own shard entry (server-side apply) or the plan (merge
 * patch) on the status subresource; nothing else.
 */
export const WORKER_CALLS: readonly Omit<KubeCall, 'scope'>[] = [
  { method: 'getNamespacedCustomObject', group: 's3encryption.dev', resource: 'encryptionjobs', verb: 'get' },
  {
    method: 'patchNamespacedCustomObjectStatus',
    group: 's3encryption.dev',
    resource: 'encryptionjobs/status',
    verb: 'patch',
  },
];
