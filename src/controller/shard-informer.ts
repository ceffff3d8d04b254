// The operator's view of every EncryptionShard it may see: an informer (list
// once, then watch) whose cache the worker runs read instead of asking the API
// server on every look, and whose events keep the per-shard metrics current.
import { makeInformer, type Informer, type KubeConfig, type ObjectCache } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { GROUP, SHARD_PLURAL, VERSION, type EncryptionJob, type EncryptionShard } from './api.js';
import { keepWatching } from './keep-watching.js';
import type { KubeClient } from './kubeclient.js';
import { SHARD_JOB_LABEL, jobLabelValue, shardOwnedBy } from './shardstore.js';

export interface ShardEvents {
  changed(shard: EncryptionShard): void;
  deleted(shard: EncryptionShard): void;
}

export class ShardInformer {
  private informer: (Informer<EncryptionShard> & ObjectCache<EncryptionShard>) | undefined;
  private watching: { stop(): void } | undefined;
  private synced = false;

  constructor(
    private readonly kc: KubeConfig,
    private readonly client: KubeClient,
    private readonly log: Logger,
    private readonly events: ShardEvents,
    private readonly namespace?: string,
  ) {}

  /** Has the first list come back (a cache that is not synced says nothing about what is missing)? */
  get ready(): boolean {
    return this.synced;
  }

  async start(): Promise<void> {
    const ns = this.namespace;
    const path = ns
      ? `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${SHARD_PLURAL}`
      : `/apis/${GROUP}/${VERSION}/${SHARD_PLURAL}`;
    const informer = makeInformer<EncryptionShard>(this.kc, path, async () => {
      const list = await this.client.listAllShards(ns);
      this.synced = true;
      return list;
    });
    this.informer = informer;
    informer.on('add', (o) => this.events.changed(o));
    informer.on('update', (o) => this.events.changed(o));
    informer.on('delete', (o) => this.events.deleted(o));
    this.watching = keepWatching(informer, { log: this.log, what: 'EncryptionShards' });
    await informer.start();
  }

  async stop(): Promise<void> {
    this.watching?.stop();
    await this.informer?.stop();
  }

  /** How many real-run shard objects of job `name` the cache holds (however owned). */
  countFor(namespace: string, name: string): number {
    return (this.informer?.list(namespace) ?? []).filter((o) => o.spec.job === name && !o.spec.dryRun).length;
  }

  /** The job's own shard objects as the cache holds them (real and dry run alike). */
  forJob(job: EncryptionJob): EncryptionShard[] {
    const ns = job.metadata?.namespace ?? '';
    const label = jobLabelValue(job.metadata?.name ?? '');
    return (this.informer?.list(ns) ?? []).filter(
      (o) => o.metadata?.labels?.[SHARD_JOB_LABEL] === label && shardOwnedBy(o, job),
    );
  }
}
