// The manager: an informer feeding a work queue, and workers that reconcile.
// The informer recovers from every watch error by starting again with backoff;
// client-node relists on 410 Gone by itself.
import { makeInformer, type Informer, type KubeConfig, type ObjectCache } from '@kubernetes/client-node';
import { Budget } from '../engine/index.js';
import type { Logger } from '../log.js';
import { CONTROLLER, type Metrics } from '../metrics.js';
import { GROUP, jobKey, PLURAL, VERSION, type EncryptionJob } from './api.js';
import { KubeClient } from './kubeclient.js';
import { Reconciler } from './reconciler.js';
import type { WorkerTemplate } from './workerjob.js';
import { ShardMetrics } from './shard-metrics.js';
import { ShardInformer } from './shard-informer.js';
import { WorkerJobInformers } from './worker-informer.js';
import { Backoff } from './backoff.js';
import type { TenancyPolicy } from './tenancy.js';
import { WorkQueue } from './workqueue.js';

export interface ManagerOptions {
  kubeConfig: KubeConfig;
  metrics: Metrics;
  log: Logger;
  workers?: number;
  /** First delay before retrying a run that ended on a passing error (default 5 s). */
  retryBaseMs?: number;
  /** Objects in flight across all jobs (default 256). */
  maxInflightObjects?: number;
  /** Look at every job again this often (ms). */
  resyncMs?: number;
  /** Watch only this namespace (empty: all namespaces). */
  namespace?: string;
  /** The admin's tenancy policy (ambient identity, roles, report destinations, endpoints). */
  policy: TenancyPolicy;
  /** Image and command of the worker pods of spec.workers jobs. */
  workerTemplate?: WorkerTemplate;
}

export interface Health {
  ok: boolean;
  /** What is wrong, for the probe's answer and the log. */
  problems: string[];
}

/** A watch connection that lasts this long without an error counts as connected again. */
const WATCH_SETTLED_MS = 10_000;

export class Manager {
  readonly client: KubeClient;
  readonly queue: WorkQueue;
  readonly reconciler: Reconciler;
  private informer: (Informer<EncryptionJob> & ObjectCache<EncryptionJob>) | undefined;
  /** Every shard object: its cache is what worker runs read, its events keep the per-shard metrics. */
  readonly shards: ShardInformer;
  /** The worker Jobs of the namespaces that allowed worker pods. */
  private readonly workerJobs: WorkerJobInformers;
  private readonly shardMetrics: ShardMetrics;
  private synced = false;
  private stopping = false;
  private workers: Promise<void>[] = [];
  /** Delay before the informer is restarted after a watch error: it grows while restarts keep failing. */
  private readonly restartBackoff = new Backoff(1000, 30_000);
  /** Resets the restart delay once a (re)started watch has lasted WATCH_SETTLED_MS without an error. */
  private watchHealthy: NodeJS.Timeout | undefined;
  private resync: NodeJS.Timeout | undefined;
  /** Reconciles in progress: key and start time, per worker. */
  private readonly busy = new Map<number, { key: string; since: number }>();
  /** Since when the watch of jobs has been failing (undefined: it works). */
  private watchDownSince: number | undefined;
  private watchSettle: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ManagerOptions) {
    this.client = new KubeClient(opts.kubeConfig);
    const labels = { name: CONTROLLER, controller: CONTROLLER };
    this.queue = new WorkQueue({
      onAdd: () => opts.metrics.workqueueAdds.inc(labels),
      onRetry: () => opts.metrics.workqueueRetries.inc(labels),
      onDepth: (d) => opts.metrics.workqueueDepth.set(labels, d),
      onQueueWait: (s) => opts.metrics.workqueueQueueDuration.observe(labels, s),
    });
    // Series start at 0, as controller-runtime's do, so rates and alerts have data before the first error.
    const controller = { controller: CONTROLLER };
    opts.metrics.reconcileErrors.inc(controller, 0);
    for (const result of ['success', 'error', 'requeue_after'])
      opts.metrics.reconcileTotal.inc({ ...controller, result }, 0);
    opts.metrics.activeWorkers.set(controller, 0);
    opts.metrics.workqueueDepth.set(labels, 0);
    opts.metrics.workqueueAdds.inc(labels, 0);
    opts.metrics.workqueueRetries.inc(labels, 0);
    this.shardMetrics = new ShardMetrics(opts.metrics);
    this.shards = new ShardInformer(
      opts.kubeConfig,
      this.client,
      opts.log,
      {
        changed: (o) => {
          const ns = o.metadata?.namespace ?? '';
          const planned = this.informer?.get(o.spec.job, ns)?.status?.shardPlan?.shards;
          this.shardMetrics.observe(o, planned ?? this.shards.countFor(ns, o.spec.job));
          this.reconciler.poke(ns, o.spec.job);
        },
        deleted: (o) => this.shardMetrics.forget(o),
      },
      opts.namespace,
    );
    this.workerJobs = new WorkerJobInformers(opts.kubeConfig, this.client, opts.log, (ns, name) =>
      this.reconciler.poke(ns, name),
    );
    this.reconciler = new Reconciler({
      client: this.client,
      metrics: opts.metrics,
      log: opts.log,
      budget: new Budget(opts.maxInflightObjects ?? 256),
      ...(opts.retryBaseMs ? { retryBaseMs: opts.retryBaseMs } : {}),
      getJob: (namespace, name) => this.informer?.get(name, namespace),
      shardCache: this.shards,
      workerJobs: this.workerJobs,
      policy: opts.policy,
      requeue: (key, afterMs) => this.queue.addAfter(key, afterMs),
      ...(opts.workerTemplate ? { workerTemplate: opts.workerTemplate } : {}),
    });
  }

  /**
   * Liveness: a reconcile that has run longer than `stallMs` (a wedged worker),
   * or a watch of jobs that has been failing for longer than `stallMs` (a lost
   * informer: the operator would no longer see new jobs or edits).
   */
  health(stallMs: number, now = Date.now()): Health {
    const problems: string[] = [];
    for (const { key, since } of this.busy.values()) {
      if (now - since > stallMs) problems.push(`reconcile of ${key} running for ${Math.round((now - since) / 1000)} s`);
    }
    if (this.watchDownSince !== undefined && now - this.watchDownSince > stallMs) {
      problems.push(`watch of EncryptionJobs failing for ${Math.round((now - this.watchDownSince) / 1000)} s`);
    }
    return { ok: problems.length === 0, problems };
  }

  private watchWorks(): void {
    this.watchDownSince = undefined;
    if (this.watchSettle) clearTimeout(this.watchSettle);
    this.watchSettle = undefined;
  }

  get ready(): boolean {
    return this.synced && !this.stopping;
  }

  async start(): Promise<void> {
    const ns = this.opts.namespace;
    const path = ns ? `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}` : `/apis/${GROUP}/${VERSION}/${PLURAL}`;
    const informer = makeInformer<EncryptionJob>(this.opts.kubeConfig, path, async () => {
      const list = await this.client.listJobs(ns);
      this.watchWorks();
      return list;
    });
    this.informer = informer;
    const enqueue = (obj: EncryptionJob): void => this.queue.add(jobKey(obj));
    const onEvent = (obj: EncryptionJob): void => {
      this.watchWorks();
      enqueue(obj);
    };
    informer.on('add', onEvent);
    informer.on('update', onEvent);
    informer.on('delete', (obj) => {
      this.watchWorks();
      for (const shard of this.shards.forJob(obj)) this.shardMetrics.forget(shard);
      enqueue(obj);
    });
    informer.on('connect', () => {
      this.synced = true;
      // 'connect' comes before the watch request, also when the watch then fails at once:
      // the restart delay starts again only once the watch has lasted without an error.
      if (this.watchHealthy) clearTimeout(this.watchHealthy);
      this.watchHealthy = setTimeout(() => this.restartBackoff.reset(), WATCH_SETTLED_MS);
      this.watchHealthy.unref();
      // 'connect' comes before the watch request: it works once it lasts without an error.
      if (this.watchDownSince !== undefined && !this.watchSettle) {
        this.watchSettle = setTimeout(() => this.watchWorks(), WATCH_SETTLED_MS);
        this.watchSettle.unref();
      }
      // A relist emits nothing for unchanged objects: look at every job again after
      // a reconnect, since a status write may have been lost while we were cut off.
      for (const job of informer.list()) enqueue(job);
    });
    informer.on('error', (err) => {
      if (this.stopping) return;
      this.watchDownSince ??= Date.now();
      if (this.watchSettle) clearTimeout(this.watchSettle);
      this.watchSettle = undefined;
      if (this.watchHealthy) clearTimeout(this.watchHealthy);
      this.watchHealthy = undefined;
      const delay = this.restartBackoff.next();
      this.opts.log.warn({ err: String(err), retryInMs: delay }, 'watch failed; restarting the informer');
      setTimeout(() => {
        if (!this.stopping)
          informer.start().catch((e: unknown) => this.opts.log.warn({ err: String(e) }, 'informer restart failed'));
      }, delay);
    });
    // The shards first: a worker run adopted at start reads them from this cache.
    await this.shards.start();
    await informer.start();
    this.synced = true;
    for (const job of informer.list()) enqueue(job);
    // Periodic resync, like controller-runtime's SyncPeriod.
    this.resync = setInterval(() => informer.list().forEach(enqueue), this.opts.resyncMs ?? 600_000);
    this.resync.unref();
    const n = this.opts.workers ?? 4;
    for (let i = 0; i < n; i++) this.workers.push(this.work(i));
  }

  private async work(worker: number): Promise<void> {
    const { metrics, log } = this.opts;
    const labels = { controller: CONTROLLER };
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      metrics.activeWorkers.inc(labels);
      this.busy.set(worker, { key, since: Date.now() });
      const end = metrics.reconcileTime.startTimer(labels);
      const endWork = metrics.workqueueWorkDuration.startTimer({ name: CONTROLLER, controller: CONTROLLER });
      try {
        const requeue = await this.reconciler.reconcile(key);
        this.queue.forget(key);
        if (requeue !== undefined) {
          this.queue.addAfter(key, requeue);
          metrics.reconcileTotal.inc({ ...labels, result: 'requeue_after' });
        } else {
          metrics.reconcileTotal.inc({ ...labels, result: 'success' });
        }
      } catch (err) {
        metrics.reconcileTotal.inc({ ...labels, result: 'error' });
        metrics.reconcileErrors.inc(labels);
        log.warn({ key, err: String(err) }, 'reconcile failed; retrying with backoff');
        this.queue.addRateLimited(key);
      } finally {
        end();
        endWork();
        metrics.activeWorkers.dec(labels);
        this.busy.delete(worker);
        this.queue.done(key);
      }
    }
  }

  /** Stop watching, stop every run (each saves its checkpoint), and let the workers drain. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.resync) clearInterval(this.resync);
    if (this.watchSettle) clearTimeout(this.watchSettle);
    if (this.watchHealthy) clearTimeout(this.watchHealthy);
    await this.informer?.stop();
    await this.shards.stop();
    await this.workerJobs.stop();
    this.queue.shutdown();
    await this.reconciler.stopAll();
    await Promise.all(this.workers);
  }
}
