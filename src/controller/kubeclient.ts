// The few Kubernetes calls the controller makes, behind one small interface.
// Every call is bounded by a deadline: a connection that hangs without a reset
// (a partition, an overloaded API server) would otherwise hold a reconcile
// worker, or a run's final status write, for good.
import {
  AuthenticationV1Api,
  AuthorizationV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  Observable,
  PatchStrategy,
  setHeaderOptions,
  type ConfigurationOptions,
  type CoreV1Event,
  type KubeConfig,
  type ObservableMiddleware,
  type V1Job,
  type V1JobList,
  type V1Pod,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import {
  GROUP,
  PLURAL,
  SHARD_PLURAL,
  VERSION,
  type EncryptionJob,
  type EncryptionJobStatus,
  type EncryptionShard,
  type EncryptionShardStatus,
} from './api.js';

/** How long one API call may take by default (client-go's clients leave it to the caller; we bound every one). */
export const API_CALL_TIMEOUT_MS = 30_000;

/** Options for one client-node call (the object-parameter API takes observable middleware) that end it when `signal` fires. */
export function bounded(signal: AbortSignal, opt?: ConfigurationOptions): ConfigurationOptions {
  const middleware: ObservableMiddleware[] = [
    {
      pre: (ctx) => {
        ctx.setSignal(signal);
        return new Observable(Promise.resolve(ctx));
      },
      post: (res) => new Observable(Promise.resolve(res)),
    },
  ];
  return { ...opt, middleware: [...(opt?.middleware ?? []), ...middleware], middlewareMergeStrategy: 'append' };
}

/** An API call that did not answer within its deadline. */
export class ApiTimeoutError extends Error {
  constructor(what: string, ms: number, options?: { cause?: unknown }) {
    super(`${what}: no answer from the API server within ${ms} ms`, options);
    this.name = 'ApiTimeoutError';
  }
}

export interface EventInput {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export class KubeClient {
  readonly custom: CustomObjectsApi;
  readonly core: CoreV1Api;
  readonly batch: BatchV1Api;
  readonly authorization: AuthorizationV1Api;
  readonly authentication: AuthenticationV1Api;
  private readonly timeoutMs: number;

  constructor(
    readonly kc: KubeConfig,
    opts: { callTimeoutMs?: number } = {},
  ) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
    this.batch = kc.makeApiClient(BatchV1Api);
    this.authorization = kc.makeApiClient(AuthorizationV1Api);
    this.authentication = kc.makeApiClient(AuthenticationV1Api);
    this.timeoutMs = opts.callTimeoutMs ?? API_CALL_TIMEOUT_MS;
  }

  /** Runs one API call under the deadline; a call it ends is an ApiTimeoutError naming what was asked. */
  private async call<T>(what: string, send: (opts: ConfigurationOptions) => Promise<T>): Promise<T> {
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      return await send(bounded(signal));
    } catch (err) {
      if (signal.aborted) throw new ApiTimeoutError(what, this.timeoutMs, { cause: err });
      throw err;
    }
  }

  async listJobs(namespace?: string): Promise<{ items: EncryptionJob[]; metadata?: { resourceVersion?: string } }> {
    type List = { items: EncryptionJob[]; metadata?: { resourceVersion?: string } };
    if (namespace) {
      return (await this.call(`list EncryptionJobs in ${namespace}`, (o) =>
        this.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL }, o),
      )) as List;
    }
    return (await this.call('list EncryptionJobs', (o) =>
      this.custom.listCustomObjectForAllNamespaces({ group: GROUP, version: VERSION, resourcePlural: PLURAL }, o),
    )) as List;
  }

  async getJob(namespace: string, name: string): Promise<EncryptionJob> {
    return (await this.call(`get EncryptionJob ${namespace}/${name}`, (o) =>
      this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name }, o),
    )) as EncryptionJob;
  }

  /** JSON merge patch of /status: only the fields given change. */
  async patchStatus(namespace: string, name: string, status: EncryptionJobStatus): Promise<EncryptionJob> {
    return (await this.call(`patch the status of EncryptionJob ${namespace}/${name}`, (o) =>
      this.custom.patchNamespacedCustomObjectStatus(
        { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body: { status } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch, o),
      ),
    )) as EncryptionJob;
  }

  async patchJob(namespace: string, name: string, patch: object): Promise<EncryptionJob> {
    return (await this.call(`patch EncryptionJob ${namespace}/${name}`, (o) =>
      this.custom.patchNamespacedCustomObject(
        { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body: patch },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch, o),
      ),
    )) as EncryptionJob;
  }

  /** Every EncryptionShard the operator may see (one namespace, or all): the shard informer's list. */
  async listAllShards(
    namespace?: string,
  ): Promise<{ items: EncryptionShard[]; metadata?: { resourceVersion?: string } }> {
    type List = { items: EncryptionShard[]; metadata?: { resourceVersion?: string } };
    if (namespace) {
      return (await this.call(`list EncryptionShards in ${namespace}`, (o) =>
        this.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: SHARD_PLURAL }, o),
      )) as List;
    }
    return (await this.call('list EncryptionShards', (o) =>
      this.custom.listCustomObjectForAllNamespaces({ group: GROUP, version: VERSION, resourcePlural: SHARD_PLURAL }, o),
    )) as List;
  }

  /** The EncryptionShards of a namespace with these labels (the job's, by its label). */
  async listShards(namespace: string, labelSelector: string): Promise<EncryptionShard[]> {
    const list = (await this.call(`list EncryptionShards in ${namespace} (${labelSelector})`, (o) =>
      this.custom.listNamespacedCustomObject(
        { group: GROUP, version: VERSION, namespace, plural: SHARD_PLURAL, labelSelector },
        o,
      ),
    )) as { items: EncryptionShard[] };
    return list.items;
  }

  /** The EncryptionShard, or undefined when there is none. */
  async getShard(namespace: string, name: string): Promise<EncryptionShard | undefined> {
    try {
      return (await this.call(`get EncryptionShard ${namespace}/${name}`, (o) =>
        this.custom.getNamespacedCustomObject(
          { group: GROUP, version: VERSION, namespace, plural: SHARD_PLURAL, name },
          o,
        ),
      )) as EncryptionShard;
    } catch (err) {
      if (apiStatus(err) === 404) return undefined;
      throw err;
    }
  }

  async createShard(shard: EncryptionShard): Promise<EncryptionShard> {
    const namespace = shard.metadata?.namespace ?? '';
    return (await this.call(`create EncryptionShard ${namespace}/${shard.metadata?.name ?? ''}`, (o) =>
      this.custom.createNamespacedCustomObject(
        { group: GROUP, version: VERSION, namespace, plural: SHARD_PLURAL, body: shard },
        o,
      ),
    )) as EncryptionShard;
  }

  /** Deletes that very EncryptionShard (uid precondition); one already gone is fine. */
  async deleteShard(namespace: string, name: string, uid: string): Promise<void> {
    try {
      await this.call(`delete EncryptionShard ${namespace}/${name}`, (o) =>
        this.custom.deleteNamespacedCustomObject(
          { group: GROUP, version: VERSION, namespace, plural: SHARD_PLURAL, name, body: { preconditions: { uid } } },
          o,
        ),
      );
    } catch (err) {
      if (apiStatus(err) !== 404 && apiStatus(err) !== 409) throw err;
    }
  }

  /** JSON merge patch of a shard's /status: only its runner writes it. */
  async patchShardStatus(namespace: string, name: string, status: EncryptionShardStatus): Promise<void> {
    await this.call(`patch the status of EncryptionShard ${namespace}/${name}`, (o) =>
      this.custom.patchNamespacedCustomObjectStatus(
        { group: GROUP, version: VERSION, namespace, plural: SHARD_PLURAL, name, body: { status } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch, o),
      ),
    );
  }

  async readServiceAccount(namespace: string, name: string): Promise<V1ServiceAccount> {
    return this.call(`read ServiceAccount ${namespace}/${name}`, (o) =>
      this.core.readNamespacedServiceAccount({ namespace, name }, o),
    );
  }

  /** The batch/v1 Job, or undefined when there is none. */
  async readBatchJob(namespace: string, name: string): Promise<V1Job | undefined> {
    try {
      return await this.call(`read Job ${namespace}/${name}`, (o) =>
        this.batch.readNamespacedJob({ namespace, name }, o),
      );
    } catch (err) {
      if (apiStatus(err) === 404) return undefined;
      throw err;
    }
  }

  /** The namespace's Jobs with these labels (the worker Job informer's list). */
  async listWorkerJobs(namespace: string, labelSelector: string): Promise<V1JobList> {
    return this.call(`list worker Jobs in ${namespace}`, (o) =>
      this.batch.listNamespacedJob({ namespace, labelSelector }, o),
    );
  }

  /** The pods the Job controller made for the Job of this uid (its controller-uid label), any phase. */
  async listJobPods(namespace: string, jobUid: string): Promise<V1Pod[]> {
    const list = await this.call(`list the pods of Job uid ${jobUid} in ${namespace}`, (o) =>
      this.core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/controller-uid=${jobUid}` }, o),
    );
    return list.items;
  }

  /** The events with this reason about the object of this uid (e.g. the Job controller's FailedCreate on a Job). */
  async listEventsAbout(namespace: string, uid: string, reason: string): Promise<CoreV1Event[]> {
    const list = await this.call(`list the ${reason} events of uid ${uid} in ${namespace}`, (o) =>
      this.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.uid=${uid},reason=${reason}` }, o),
    );
    return list.items;
  }

  async createBatchJob(job: V1Job): Promise<V1Job> {
    const namespace = job.metadata?.namespace ?? '';
    return this.call(`create Job ${namespace}/${job.metadata?.name ?? ''}`, (o) =>
      this.batch.createNamespacedJob({ namespace, body: job }, o),
    );
  }

  /**
   * Deletes a Job and, in the foreground, its pods: the Job is gone once its pods are.
   * With `uid`, only that very Job: a Job of the same name made since (someone else's) is left alone.
   */
  async deleteBatchJob(namespace: string, name: string, uid?: string): Promise<void> {
    try {
      await this.call(`delete Job ${namespace}/${name}`, (o) =>
        this.batch.deleteNamespacedJob(
          // In the body, not the query: the API server ignores query options when a body is sent, and a
          // Job deleted without a policy orphans its pods.
          { namespace, name, body: { propagationPolicy: 'Foreground', ...(uid ? { preconditions: { uid } } : {}) } },
          o,
        ),
      );
    } catch (err) {
      // 409: the uid precondition failed, so the Job of that name is not the one we meant.
      if (apiStatus(err) !== 404 && !(uid && apiStatus(err) === 409)) throw err;
    }
  }

  /**
   * May this client do `verb` on `resource` in `namespace`? Asked of the API server
   * (SelfSubjectAccessReview), which every authenticated user may ask about itself.
   */
  async mayI(namespace: string, verb: string, group: string, resource: string): Promise<boolean> {
    const review = await this.call(`review access to ${verb} ${resource} in ${namespace}`, (o) =>
      this.authorization.createSelfSubjectAccessReview(
        {
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectAccessReview',
            spec: { resourceAttributes: { namespace, verb, group, resource } },
          },
        },
        o,
      ),
    );
    return review.status?.allowed === true;
  }

  /** The user name the API server knows this client as (SelfSubjectReview), e.g. system:serviceaccount:NS:NAME. */
  async whoAmI(): Promise<string | undefined> {
    const review = await this.call('review who this client is', (o) =>
      this.authentication.createSelfSubjectReview(
        { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } },
        o,
      ),
    );
    return review.status?.userInfo?.username;
  }

  /** Reads a Secret: always in the job's own namespace (the caller passes the job's namespace). */
  async readSecret(namespace: string, name: string): Promise<Record<string, string>> {
    const secret = await this.call(`read Secret ${namespace}/${name}`, (o) =>
      this.core.readNamespacedSecret({ namespace, name }, o),
    );
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
    for (const [k, v] of Object.entries(secret.stringData ?? {})) out[k] = v;
    return out;
  }

  async event(job: EncryptionJob, input: EventInput, component: string): Promise<void> {
    const ns = job.metadata?.namespace ?? 'default';
    const now = new Date();
    const body: CoreV1Event = {
      metadata: { generateName: `${job.metadata?.name ?? 'job'}.`, namespace: ns },
      involvedObject: {
        apiVersion: job.apiVersion,
        kind: job.kind,
        name: job.metadata?.name,
        namespace: ns,
        uid: job.metadata?.uid,
        resourceVersion: job.metadata?.resourceVersion,
      },
      type: input.type,
      reason: input.reason,
      message: input.message,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      source: { component },
      reportingComponent: component,
      reportingInstance: process.env.HOSTNAME ?? component,
    };
    await this.call(`create an event for EncryptionJob ${ns}/${job.metadata?.name ?? ''}`, (o) =>
      this.core.createNamespacedEvent({ namespace: ns, body }, o),
    );
  }
}

/** The HTTP status of a client-node ApiException, if it is one. */
export function apiStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}
