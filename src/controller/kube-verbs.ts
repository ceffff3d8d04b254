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
  /**
   * cluster: every namespace the operator watches (a ClusterRole, or a Role in --watch-namespace);
   * operator-namespace: a Role in the operator's own namespace; worker-namespace: the workers
   * ClusterRole, which grants nothing until a namespace binds it to the operator (RBAC as consent:
   * deploy/rbac/role_workers.yaml, the chart's workers.namespaces); every-user: what Kubernetes'
   * own system:basic-user ClusterRole lets every authenticated user do (ask about itself).
   */
  scope: 'cluster' | 'operator-namespace' | 'worker-namespace' | 'every-user';
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
  // A sharded job's EncryptionShard objects (shardstore.ts, shard-informer.ts): planned, watched, written by
  // the operator's shard runs, deleted when a new plan replaces them.
  {
    method: 'listCustomObjectForAllNamespaces',
    group: 's3encryption.dev',
    resource: 'encryptionshards',
    verb: 'list',
    scope: 'cluster',
  },
  {
    method: 'listNamespacedCustomObject',
    group: 's3encryption.dev',
    resource: 'encryptionshards',
    verb: 'list',
    scope: 'cluster',
  },
  { method: 'makeInformer', group: 's3encryption.dev', resource: 'encryptionshards', verb: 'watch', scope: 'cluster' },
  {
    method: 'getNamespacedCustomObject',
    group: 's3encryption.dev',
    resource: 'encryptionshards',
    verb: 'get',
    scope: 'cluster',
  },
  {
    method: 'createNamespacedCustomObject',
    group: 's3encryption.dev',
    resource: 'encryptionshards',
    verb: 'create',
    scope: 'cluster',
  },
  {
    method: 'deleteNamespacedCustomObject',
    group: 's3encryption.dev',
    resource: 'encryptionshards',
    verb: 'delete',
    scope: 'cluster',
  },
  {
    method: 'patchNamespacedCustomObjectStatus',
    group: 's3encryption.dev',
    resource: 'encryptionshards/status',
    verb: 'patch',
    scope: 'cluster',
  },
  // Always the job's own namespace (reconciler.ts credentials()).
  { method: 'readNamespacedSecret', group: '', resource: 'secrets', verb: 'get', scope: 'cluster' },
  // >>> Waiting for a Secret that does not exist yet (controller robustness work) may add
  // >>> list/watch on secrets here, with the same rows in deploy/rbac/role.yaml.
  { method: 'createNamespacedEvent', group: '', resource: 'events', verb: 'create', scope: 'cluster' },
  // spec.workers (workerrun.ts), only in namespaces that bound the workers ClusterRole to the operator:
  // the marked ServiceAccount is checked, the worker Job created, read and deleted.
  {
    method: 'readNamespacedServiceAccount',
    group: '',
    resource: 'serviceaccounts',
    verb: 'get',
    scope: 'worker-namespace',
  },
  { method: 'readNamespacedJob', group: 'batch', resource: 'jobs', verb: 'get', scope: 'worker-namespace' },
  // The worker Job informer of a namespace that allowed worker pods (worker-informer.ts).
  { method: 'listNamespacedJob', group: 'batch', resource: 'jobs', verb: 'list', scope: 'worker-namespace' },
  { method: 'makeInformer', group: 'batch', resource: 'jobs', verb: 'watch', scope: 'worker-namespace' },
  { method: 'createNamespacedJob', group: 'batch', resource: 'jobs', verb: 'create', scope: 'worker-namespace' },
  { method: 'deleteNamespacedJob', group: 'batch', resource: 'jobs', verb: 'delete', scope: 'worker-namespace' },
  // Do the worker pods start (worker-watch.ts)? The Job's pods, and its FailedCreate events when it has none.
  { method: 'listNamespacedPod', group: '', resource: 'pods', verb: 'list', scope: 'worker-namespace' },
  { method: 'listNamespacedEvent', group: '', resource: 'events', verb: 'list', scope: 'worker-namespace' },
  // Has this namespace allowed worker pods? Asked before anything is made (workerrun.ts checkConsent).
  {
    method: 'createSelfSubjectAccessReview',
    group: 'authorization.k8s.io',
    resource: 'selfsubjectaccessreviews',
    verb: 'create',
    scope: 'every-user',
  },
  // Who the operator is, to name it in WorkersNotAllowed.
  {
    method: 'createSelfSubjectReview',
    group: 'authentication.k8s.io',
    resource: 'selfsubjectreviews',
    verb: 'create',
    scope: 'every-user',
  },
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
 * its job; the planning pod makes the shard objects and writes the plan's summary;
 * a shard's pod writes its own shard object's status; nothing else.
 */
export const WORKER_CALLS: readonly Omit<KubeCall, 'scope'>[] = [
  { method: 'getNamespacedCustomObject', group: 's3encryption.dev', resource: 'encryptionjobs', verb: 'get' },
  // The planning pod writes the plan's summary (status.shardPlan).
  {
    method: 'patchNamespacedCustomObjectStatus',
    group: 's3encryption.dev',
    resource: 'encryptionjobs/status',
    verb: 'patch',
  },
  // The planning pod makes the shard objects; a shard's pod reads its own and writes its status.
  { method: 'getNamespacedCustomObject', group: 's3encryption.dev', resource: 'encryptionshards', verb: 'get' },
  {
    method: 'createNamespacedCustomObject',
    group: 's3encryption.dev',
    resource: 'encryptionshards',
    verb: 'create',
  },
  {
    method: 'patchNamespacedCustomObjectStatus',
    group: 's3encryption.dev',
    resource: 'encryptionshards/status',
    verb: 'patch',
  },
];
