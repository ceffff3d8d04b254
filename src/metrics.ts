// Prometheus metrics: controller-runtime's names (so existing dashboards work)
// and the job metrics of this operator, prefixed s3encryption_.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const CONTROLLER = 'encryptionjob';

export class Metrics {
  readonly registry = new Registry();

  readonly reconcileTotal = new Counter({
    name: 'controller_runtime_reconcile_total',
    help: 'Total number of reconciliations per controller',
    labelNames: ['controller', 'result'],
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'controller_runtime_reconcile_errors_total',
    help: 'Total number of reconciliation errors per controller',
    labelNames: ['controller'],
    registers: [this.registry],
  });
  readonly reconcileTime = new Histogram({
    name: 'controller_runtime_reconcile_time_seconds',
    help: 'Length of time per reconciliation per controller',
    labelNames: ['controller'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly activeWorkers = new Gauge({
    name: 'controller_runtime_active_workers',
    help: 'Number of currently used workers per controller',
    labelNames: ['controller'],
    registers: [this.registry],
  });
  readonly workqueueDepth = new Gauge({
    name: 'workqueue_depth',
    help: 'Current depth of workqueue',
    labelNames: ['name', 'controller'],
    registers: [this.registry],
  });
  readonly workqueueAdds = new Counter({
    name: 'workqueue_adds_total',
    help: 'Total number of adds handled by workqueue',
    labelNames: ['name', 'controller'],
    registers: [this.registry],
  });
  readonly workqueueRetries = new Counter({
    name: 'workqueue_retries_total',
    help: 'Total number of retries handled by workqueue',
    labelNames: ['name', 'controller'],
    registers: [this.registry],
  });
  readonly workqueueQueueDuration = new Histogram({
    name: 'workqueue_queue_duration_seconds',
    help: 'How long in seconds an item stays in workqueue before being requested',
    labelNames: ['name', 'controller'],
    buckets: [0.001, 0.01, 0.1, 1, 10, 60],
    registers: [this.registry],
  });
  readonly workqueueWorkDuration = new Histogram({
    name: 'workqueue_work_duration_seconds',
    help: 'How long in seconds processing an item from workqueue takes',
    labelNames: ['name', 'controller'],
    buckets: [0.001, 0.01, 0.1, 1, 10, 60],
    registers: [this.registry],
  });
  readonly leaderStatus = new Gauge({
    name: 'leader_election_master_status',
    help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master',
    labelNames: ['name'],
    registers: [this.registry],
  });

  readonly objects = new Counter({
    name: 's3encryption_objects_total',
    help: 'Objects finished by a job, by result (encrypted, already_encrypted, skipped, failed)',
    labelNames: ['namespace', 'name', 'result'],
    registers: [this.registry],
  });
  readonly bytes = new Counter({
    name: 's3encryption_bytes_encrypted_total',
    help: 'Bytes of the objects a job changed to the target encryption',
    labelNames: ['namespace', 'name'],
    registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: 's3encryption_request_duration_seconds',
    help: 'S3 and KMS request duration (SDK retries included) by service and operation',
    labelNames: ['namespace', 'name', 'service', 'operation', 'outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly throttles = new Counter({
    name: 's3encryption_throttling_events_total',
    help: 'Requests that met SlowDown / throttling and were retried more slowly',
    labelNames: ['namespace', 'name', 'service'],
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: 's3encryption_inflight_objects',
    help: 'Objects a job is working on right now',
    labelNames: ['namespace', 'name'],
    registers: [this.registry],
  });
  readonly progressRatio = new Gauge({
    name: 's3encryption_job_progress_ratio',
    help: 'Finished objects over listed objects (1 when complete)',
    labelNames: ['namespace', 'name'],
    registers: [this.registry],
  });
  readonly jobCondition = new Gauge({
    name: 's3encryption_job_condition',
    help: '1 for the condition a job is in (Progressing, Complete, Failed, Suspended)',
    labelNames: ['namespace', 'name', 'condition'],
    registers: [this.registry],
  });

  // Per shard of a sharded job, from its status.shards (controller/shard-metrics.ts).
  readonly shardObjects = new Gauge({
    name: 's3encryption_shard_objects',
    help: 'Objects a shard of a job has finished, by result (encrypted, already_encrypted, skipped, failed), from status.shards',
    labelNames: ['namespace', 'name', 'shard', 'result'],
    registers: [this.registry],
  });
  readonly shardProgressRatio = new Gauge({
    name: 's3encryption_shard_progress_ratio',
    help: "A shard's finished objects over its objects (1 when complete), from status.shards",
    labelNames: ['namespace', 'name', 'shard'],
    registers: [this.registry],
  });
  readonly shardPhase = new Gauge({
    name: 's3encryption_shard_phase',
    help: '1 for the phase a shard of a job is in (Pending, Running, Complete, Failed), from status.shards',
    labelNames: ['namespace', 'name', 'shard', 'phase'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Drops every series of a deleted job. */
  async forgetJob(namespace: string, name: string): Promise<void> {
    const jobMetrics = [
      this.objects,
      this.bytes,
      this.requestDuration,
      this.throttles,
      this.inFlight,
      this.progressRatio,
      this.jobCondition,
      this.shardObjects,
      this.shardProgressRatio,
      this.shardPhase,
    ];
    for (const metric of jobMetrics) {
      const { values } = await metric.get();
      for (const v of values) {
        const labels = { ...(v.labels as Record<string, string | number>) };
        if (labels.namespace !== namespace || labels.name !== name) continue;
        delete labels.le;
        (metric as unknown as { remove(l: Record<string, string | number>): void }).remove(labels);
      }
    }
  }

  setJobCondition(namespace: string, name: string, condition: string): void {
    for (const c of ['Progressing', 'Complete', 'Failed', 'Suspended']) {
      this.jobCondition.set({ namespace, name, condition: c }, c === condition ? 1 : 0);
    }
  }
}
