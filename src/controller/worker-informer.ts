// The operator's view of its worker Jobs: one informer per namespace that
// allowed worker pods (a namespace-scoped list and watch of the Jobs labelled
// as this operator's workers: the RoleBinding of the workers ClusterRole grants
// it there, and nowhere else), started when a workers run begins there. Worker
// runs read their Jobs from it instead of asking the API server on every look,
// and its events wake the run of the EncryptionJob that owns the Job.
import { makeInformer, type Informer, type KubeConfig, type ObjectCache, type V1Job } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { KIND } from './api.js';
import { keepWatching } from './keep-watching.js';
import type { KubeClient } from './kubeclient.js';

/** The labels of every worker Job the operator makes (workerjob.ts workerLabels). */
export const WORKER_JOB_SELECTOR = 'app.kubernetes.io/name=s3-encryption-operator,app.kubernetes.io/component=worker';

interface Watched {
  informer: Informer<V1Job> & ObjectCache<V1Job>;
  /** Has a list come back since the last start (a cache that has not synced says nothing)? */
  synced: boolean;
  watching?: { stop(): void };
}

export class WorkerJobInformers {
  private readonly byNamespace = new Map<string, Watched>();
  private stopping = false;

  constructor(
    private readonly kc: KubeConfig,
    private readonly client: KubeClient,
    private readonly log: Logger,
    /** A worker Job changed: the namespace and name of the EncryptionJob that owns it. */
    private readonly changed: (namespace: string, jobName: string) => void,
  ) {}

  /** Watches the namespace's worker Jobs from now on (once per namespace); its consent was checked. */
  watch(namespace: string): void {
    if (this.stopping || this.byNamespace.has(namespace)) return;
    const path = `/apis/batch/v1/namespaces/${namespace}/jobs`;
    const watched: Watched = {
      informer: makeInformer<V1Job>(
        this.kc,
        path,
        async () => {
          const list = await this.client.listWorkerJobs(namespace, WORKER_JOB_SELECTOR);
          watched.synced = true;
          return list;
        },
        WORKER_JOB_SELECTOR,
      ),
      synced: false,
    };
    this.byNamespace.set(namespace, watched);
    const onEvent = (job: V1Job): void => {
      const owner = job.metadata?.ownerReferences?.find((r) => r.kind === KIND && r.controller);
      if (owner) this.changed(namespace, owner.name);
    };
    watched.informer.on('add', onEvent);
    watched.informer.on('update', onEvent);
    watched.informer.on('delete', onEvent);
    watched.watching = keepWatching(watched.informer, {
      log: this.log,
      what: `worker Jobs in ${namespace}`,
      // Until it lists again the cache says nothing: the runs ask the API server (a namespace whose
      // consent was taken away answers 403 there too, and the run says so).
      onDown: () => (watched.synced = false),
    });
    watched.informer.start().catch((err: unknown) => {
      watched.synced = false;
      this.log.warn({ namespace, err: String(err) }, 'could not start watching worker Jobs');
    });
  }

  /**
   * The Job of that name as the cache holds it: `known` is false when the cache cannot say (not
   * watched, or not synced), and then the caller asks the API server.
   */
  get(namespace: string, name: string): { known: boolean; job?: V1Job } {
    const watched = this.byNamespace.get(namespace);
    if (!watched?.synced) return { known: false };
    const job = watched.informer.get(name, namespace);
    return job ? { known: true, job } : { known: true };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const w of this.byNamespace.values()) w.watching?.stop();
    await Promise.all([...this.byNamespace.values()].map((w) => w.informer.stop()));
  }
}
