// Leader election with a coordination.k8s.io Lease, as client-go does it: the
// leader renews every retry period; a candidate takes the lease once it has
// not been renewed for leaseDuration. Losing the lease stops the process, so
// two replicas never run the same job.
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { apiStatus } from './kubeclient.js';

export interface LeaderElectorOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  name: string;
  identity: string;
  log: Logger;
  leaseDurationSeconds?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStatus?: (leader: boolean) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private leader = false;
  private stopped = false;
  private lastRenew = 0;
  private renewLoop: Promise<void> | undefined;

  constructor(private readonly opts: LeaderElectorOptions) {
    this.api = opts.kubeConfig.makeApiClient(CoordinationV1Api);
  }

  get isLeader(): boolean {
    return this.leader;
  }

  private get duration(): number {
    return this.opts.leaseDurationSeconds ?? 15;
  }

  /** Resolves once this process holds the lease. */
  async acquire(): Promise<void> {
    const retry = this.opts.retryPeriodMs ?? 2000;
    while (!this.stopped) {
      if (await this.tryAcquireOrRenew()) {
        this.leader = true;
        this.opts.onStatus?.(true);
        this.opts.log.info({ lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.opts.identity }, 'became leader');
        return;
      }
      await sleep(retry);
    }
  }

  /** Keeps renewing; calls onLost if the lease cannot be renewed within the renew deadline. */
  keepRenewing(onLost: () => void): void {
    const retry = this.opts.retryPeriodMs ?? 2000;
    const deadline = this.opts.renewDeadlineMs ?? 10_000;
    this.lastRenew = Date.now();
    this.renewLoop = (async () => {
      while (!this.stopped) {
        await sleep(retry);
        if (this.stopped) return;
        const ok = await this.tryAcquireOrRenew().catch(() => false);
        if (ok) {
          this.lastRenew = Date.now();
        } else if (Date.now() - this.lastRenew > deadline) {
          this.leader = false;
          this.opts.onStatus?.(false);
          this.opts.log.error('lost the leader lease');
          onLost();
          return;
        }
      }
    })();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.opts;
    const now = new V1MicroTime();
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (apiStatus(err) !== 404) {
        this.opts.log.warn({ err: String(err) }, 'reading the leader lease failed');
        return false;
      }
      try {
        await this.api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: { holderIdentity: identity, leaseDurationSeconds: this.duration, acquireTime: now, renewTime: now, leaseTransitions: 0 },
          },
        });
        return true;
      } catch {
        return false;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity;
    const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = renewed + (spec.leaseDurationSeconds ?? this.duration) * 1000 < Date.now();
    if (holder && holder !== identity && !expired) return false;
    const takeover = holder !== identity;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: this.duration,
      renewTime: now,
      ...(takeover ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
    };
    try {
      // resourceVersion in the body makes this a compare-and-swap: two candidates cannot both win.
      await this.api.replaceNamespacedLease({ name, namespace, body: lease });
      return true;
    } catch {
      return false;
    }
  }

  /** Gives the lease up so a standby takes over at once (graceful shutdown). */
  async release(): Promise<void> {
    this.stopped = true;
    await this.renewLoop?.catch(() => undefined);
    if (!this.leader) return;
    try {
      const lease = await this.api.readNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace });
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      lease.spec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: new V1MicroTime(Date.now() - 2000) };
      await this.api.replaceNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace, body: lease });
    } catch (err) {
      this.opts.log.warn({ err: String(err) }, 'releasing the leader lease failed');
    }
    this.leader = false;
    this.opts.onStatus?.(false);
  }
}
