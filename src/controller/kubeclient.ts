// The few Kubernetes calls the controller makes, behind one small interface.
import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Job,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import { GROUP, KIND, PLURAL, VERSION, type EncryptionJob, type EncryptionJobStatus, type ShardStatus } from './api.js';

export interface EventInput {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export class KubeClient {
  readonly custom: CustomObjectsApi;
  readonly core: CoreV1Api;
  readonly batch: BatchV1Api;

  constructor(readonly kc: KubeConfig) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
    this.batch = kc.makeApiClient(BatchV1Api);
  }

  async listJobs(namespace?: string): Promise<{ items: EncryptionJob[]; metadata?: { resourceVersion?: string } }> {
    type List = { items: EncryptionJob[]; metadata?: { resourceVersion?: string } };
    if (namespace) {
      return (await this.custom.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
      })) as List;
    }
    return (await this.custom.listCustomObjectForAllNamespaces({
      group: GROUP,
      version: VERSION,
      resourcePlural: PLURAL,
    })) as List;
  }

  async getJob(namespace: string, name: string): Promise<EncryptionJob> {
    return (await this.custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      name,
    })) as EncryptionJob;
  }

  /** JSON merge patch of /status: only the fields given change. */
  async patchStatus(namespace: string, name: string, status: EncryptionJobStatus): Promise<EncryptionJob> {
    return (await this.custom.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body: { status } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as EncryptionJob;
  }

  async patchJob(namespace: string, name: string, patch: object): Promise<EncryptionJob> {
    return (await this.custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body: patch },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as EncryptionJob;
  }

  /**
   * Server-side apply of one shard's entry in status.shards (a list-map keyed
   * by index): a worker owns its own entry under its own field manager, so
   * workers never overwrite each other's progress.
   */
  async applyShardStatus(namespace: string, name: string, fieldManager: string, shard: ShardStatus): Promise<void> {
    await this.custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        name,
        fieldManager,
        force: true,
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: KIND,
          metadata: { name, namespace },
          status: { shards: [shard] },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    );
  }

  async readServiceAccount(namespace: string, name: string): Promise<V1ServiceAccount> {
    return this.core.readNamespacedServiceAccount({ namespace, name });
  }

  /** The batch/v1 Job, or undefined when there is none. */
  async readBatchJob(namespace: string, name: string): Promise<V1Job | undefined> {
    try {
      return await this.batch.readNamespacedJob({ namespace, name });
    } catch (err) {
      if (apiStatus(err) === 404) return undefined;
      throw err;
    }
  }

  async createBatchJob(job: V1Job): Promise<V1Job> {
    return this.batch.createNamespacedJob({ namespace: job.metadata?.namespace ?? '', body: job });
  }

  /** Deletes a Job and, in the foreground, its pods: the Job is gone once its pods are. */
  async deleteBatchJob(namespace: string, name: string): Promise<void> {
    try {
      await this.batch.deleteNamespacedJob({ namespace, name, propagationPolicy: 'Foreground' });
    } catch (err) {
      if (apiStatus(err) !== 404) throw err;
    }
  }

  /** Reads a Secret: always in the job's own namespace (the caller passes the job's namespace). */
  async readSecret(namespace: string, name: string): Promise<Record<string, string>> {
    const secret = await this.core.readNamespacedSecret({ namespace, name });
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
    for (const [k, v] of Object.entries(secret.stringData ?? {})) out[k] = v;
    return out;
  }

  async event(job: EncryptionJob, input: EventInput, component: string): Promise<void> {
    const ns = job.metadata?.namespace ?? 'default';
    const now = new Date();
    await this.core.createNamespacedEvent({
      namespace: ns,
      body: {
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
      },
    });
  }
}

/** The HTTP status of a client-node ApiException, if it is one. */
export function apiStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}
