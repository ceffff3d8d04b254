// Leader election with a coordination.k8s.io Lease, by client-go's rules:
// - a candidate judges a lease expired by its OWN clock: leaseDuration after
//   the moment it saw the lease record last change, never by comparing the
//   holder's renewTime with the local time (clocks of two pods disagree);
// - every call to the API server is bounded by a deadline, so a hung
//   connection cannot keep a leader believing it still leads;
// - a leader that has not renewed within renewDeadline (< leaseDuration) gives
//   up, measured from the start of its last successful renew, which is no later
//   than any other candidate's observation of it: so it has stopped before
//   anyone else may take the lease.
import {
  CoordinationV1Api,
  V1MicroTime,
  type KubeConfig,
  type V1Lease,
  type V1LeaseSpec,
} from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { apiStatus, bounded } from './kubeclient.js';

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

/** client-go's JitterFactor for the acquire loop. */
const JITTER = 1.2;

type Attempt = 'acquired' | 'heldByOther' | 'error';

/** The fields whose change proves the holder is alive (client-go compares the whole record). */
function recordOf(spec: V1LeaseSpec): string {
  const time = (t: unknown): string => (t instanceof Date ? t.toISOString() : typeof t === 'string' ? t : '');
  return JSON.stringify([
    spec.holderIdentity ?? '',
    spec.leaseDurationSeconds ?? 0,
    time(spec.acquireTime),
    time(spec.renewTime),
    spec.leaseTransitions ?? 0,
  ]);
}

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private leader = false;
  private stopped = false;
  /** The lease record as last seen, and when (our clock) it was first seen so. */
  private observed: { record: string; at: number } | undefined;
  /** Start of the last successful acquire or renew (our clock). */
  private lastRenew = 0;
  private renewLoop: Promise<void> | undefined;
  private watchdog: NodeJS.Timeout | undefined;

  constructor(private readonly opts: LeaderElectorOptions) {
    this.api = opts.kubeConfig.makeApiClient(CoordinationV1Api);
    if (this.renewDeadline >= this.duration * 1000)
      throw new Error('leader election: the renew deadline must be shorter than the lease duration');
    if (this.retryPeriod * JITTER >= this.renewDeadline)
      throw new Error('leader election: the retry period (x1.2) must be shorter than the renew deadline');
  }

  get isLeader(): boolean {
    return this.leader;
  }

  private get duration(): number {
    return this.opts.leaseDurationSeconds ?? 15;
  }

  private get renewDeadline(): number {
    return this.opts.renewDeadlineMs ?? 10_000;
  }

  private get retryPeriod(): number {
    return this.opts.retryPeriodMs ?? 2000;
  }

  /** Resolves once this process holds the lease. */
  async acquire(): Promise<void> {
    while (!this.stopped) {
      const started = Date.now();
      if ((await this.attempt(AbortSignal.timeout(this.renewDeadline))) === 'acquired') {
        this.lastRenew = started;
        this.leader = true;
        this.opts.onStatus?.(true);
        this.opts.log.info(
          { lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.opts.identity },
          'became leader',
        );
        return;
      }
      await sleep(this.retryPeriod * (1 + Math.random() * JITTER));
    }
  }

  /**
   * Keeps renewing every retry period; calls onLost (once) when no renew has
   * succeeded for the renew deadline, or another candidate holds the lease.
   */
  keepRenewing(onLost: () => void): void {
    let lost = false;
    const lose = (why: string): void => {
      if (lost || this.stopped) return;
      lost = true;
      if (this.watchdog) clearTimeout(this.watchdog);
      this.leader = false;
      this.opts.onStatus?.(false);
      this.opts.log.error({ why }, 'lost the leader lease');
      onLost();
    };
    // Fires even if a renew call is somehow not ended by its deadline.
    const arm = (): void => {
      if (this.watchdog) clearTimeout(this.watchdog);
      this.watchdog = setTimeout(
        () => lose(`not renewed for ${this.renewDeadline} ms`),
        this.lastRenew + this.renewDeadline - Date.now(),
      );
    };
    arm();
    this.renewLoop = (async () => {
      while (!this.stopped && !lost) {
        await sleep(this.retryPeriod);
        if (this.stopped || lost) return;
        const started = Date.now();
        const left = this.lastRenew + this.renewDeadline - started;
        if (left <= 0) return lose(`not renewed for ${this.renewDeadline} ms`);
        const result = await this.attempt(AbortSignal.timeout(left));
        if (result === 'acquired') {
          this.lastRenew = started;
          arm();
        } else if (result === 'heldByOther') {
          return lose('another candidate holds the lease');
        } else if (Date.now() - this.lastRenew >= this.renewDeadline) {
          return lose(`not renewed for ${this.renewDeadline} ms`);
        }
      }
    })();
  }

  /** One try to take or renew the lease, every call bounded by `signal`. */
  private async attempt(signal: AbortSignal): Promise<Attempt> {
    try {
      return await this.tryAcquireOrRenew(signal);
    } catch (err) {
      this.opts.log.warn({ err: String(err) }, 'leader lease: the API call failed');
      return 'error';
    }
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<Attempt> {
    const { namespace, name, identity } = this.opts;
    const call = bounded(signal);
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace }, call);
    } catch (err) {
      if (apiStatus(err) !== 404) throw err;
      const now = new V1MicroTime();
      await this.api.createNamespacedLease(
        {
          namespace,
          body: {
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: this.duration,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        },
        call,
      );
      return 'acquired';
    }
    const spec = lease.spec ?? {};
    const record = recordOf(spec);
    if (this.observed?.record !== record) this.observed = { record, at: Date.now() };
    const holder = spec.holderIdentity ?? '';
    const valid = this.observed.at + (spec.leaseDurationSeconds ?? this.duration) * 1000 > Date.now();
    if (holder !== '' && holder !== identity && (valid || this.leader)) return 'heldByOther';
    const takeover = holder !== identity;
    const now = new V1MicroTime();
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: this.duration,
      renewTime: now,
      ...(takeover ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
    };
    // resourceVersion in the body makes this a compare-and-swap: two candidates cannot both win.
    const written = await this.api.replaceNamespacedLease({ name, namespace, body: lease }, call);
    this.observed = { record: recordOf(written.spec ?? lease.spec), at: Date.now() };
    return 'acquired';
  }

  /** Gives the lease up so a standby takes over at once (graceful shutdown). */
  async release(): Promise<void> {
    this.stopped = true;
    if (this.watchdog) clearTimeout(this.watchdog);
    await this.renewLoop?.catch(() => undefined);
    if (!this.leader) return;
    try {
      const call = bounded(AbortSignal.timeout(this.renewDeadline));
      const lease = await this.api.readNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace }, call);
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      lease.spec = {
        ...lease.spec,
        holderIdentity: '',
        leaseDurationSeconds: 1,
        renewTime: new V1MicroTime(Date.now() - 2000),
      };
      await this.api.replaceNamespacedLease(
        { name: this.opts.name, namespace: this.opts.namespace, body: lease },
        call,
      );
    } catch (err) {
      this.opts.log.warn({ err: String(err) }, 'releasing the leader lease failed');
    }
    this.leader = false;
    this.opts.onStatus?.(false);
  }
}
