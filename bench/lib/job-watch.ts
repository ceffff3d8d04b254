// The bench's own watch of one EncryptionJob, from the create call to the Complete (or Failed)
// condition: it times the operator contender, so it must not lose a row to the apiserver. A watch
// can end at any time (429 Too Many Requests under load, 410 Gone, a cut connection, the client's
// inactivity timeout, a normal server-side close); after any failure the follower waits (backoff),
// lists the job again (which also catches a finish that happened while no watch was open) and
// watches again from the list's resourceVersion, so no event is missed in between.
import { CustomObjectsApi, KubeConfig, Watch } from '@kubernetes/client-node';
import { Backoff } from '../../src/controller/backoff.js';

export interface JobStatus {
  conditions?: { type: string; status: string; message?: string }[];
  progress?: Record<string, number>;
}

export interface JobObject {
  metadata?: { name?: string; resourceVersion?: string };
  status?: JobStatus;
}

/** What the follower needs of the apiserver; the real one is `apiJobSource`, tests give their own. */
export interface JobSource {
  /** The job as it is now (undefined: not created yet) and the resourceVersion to watch from. */
  list(): Promise<{ resourceVersion: string; job?: JobObject }>;
  /** Opens a watch from resourceVersion; onClose gets the error (null: a normal close). Returns abort. */
  watch(
    resourceVersion: string,
    onEvent: (type: string, obj: JobObject) => void,
    onClose: (err: unknown) => void,
  ): Promise<() => void>;
}

export interface FollowOptions {
  /** Names the job in errors. */
  label: string;
  firstBackoffMs?: number;
  /** The cap: also the most a finish seen by a re-list can be late by. */
  maxBackoffMs?: number;
  /** Give up after failing this long without one good list or watch event. */
  giveUpAfterMs?: number;
}

export interface Follow {
  /** The first list is done: from here on no status change is missed, so the job can be created. */
  opened: Promise<void>;
  /** The status with a Complete or Failed condition that is True. */
  status: Promise<JobStatus>;
  /** Why the watch had to be opened again, one entry per failure (goes into the bench row). */
  recoveries: string[];
  stop(): void;
}

export function isFinished(s: JobStatus | undefined): boolean {
  return !!s?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { statusCode?: number; code?: number }).statusCode ?? (err as { code?: unknown }).code;
    return typeof code === 'number' ? `${code} ${err.message.split('\n')[0]}` : err.message.split('\n')[0]!;
  }
  return JSON.stringify(err);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Closed {
  /** What the watch ended with: null for a normal close. */
  err: unknown;
  /** The last resourceVersion it delivered. */
  rv: string;
  events: number;
}

/** Follows one job until it finishes, re-listing and re-watching through transient failures. */
class JobFollower implements Follow {
  readonly recoveries: string[] = [];
  readonly status: Promise<JobStatus>;
  readonly opened: Promise<void>;
  private readonly backoff: Backoff;
  private readonly giveUpAfterMs: number;
  private stopped = false;
  private finished = false;
  private abortWatch: (() => void) | undefined;
  private settle!: (s: JobStatus) => void;
  private fail!: (e: unknown) => void;
  private markOpened!: () => void;

  constructor(
    private readonly source: JobSource,
    private readonly opts: FollowOptions,
  ) {
    this.backoff = new Backoff(opts.firstBackoffMs ?? 100, opts.maxBackoffMs ?? 2000);
    this.giveUpAfterMs = opts.giveUpAfterMs ?? 600_000;
    this.status = new Promise<JobStatus>((res, rej) => {
      this.settle = res;
      this.fail = rej;
    });
    // Handled where it is awaited; this keeps an early failure from counting as unhandled before then.
    this.status.catch(() => undefined);
    const listed = new Promise<void>((res) => (this.markOpened = res));
    // A follower that gives up before its first list must not leave the caller waiting there.
    this.opened = Promise.race([listed, this.status.then(() => undefined)]);
    this.loop().catch((err: unknown) => this.end(err));
  }

  stop(): void {
    this.stopped = true;
    this.abortWatch?.();
    this.markOpened();
  }

  private finish(s: JobStatus): void {
    this.finished = true;
    this.abortWatch?.();
    this.settle(s);
  }

  private end(err: unknown): void {
    this.finished = true;
    this.abortWatch?.();
    this.fail(err);
  }

  private async loop(): Promise<void> {
    let rv: string | undefined;
    let failingSince: number | undefined;
    while (!this.stopped && !this.finished) {
      try {
        if (rv === undefined) {
          const listed = await this.source.list();
          this.markOpened();
          failingSince = undefined;
          if (isFinished(listed.job?.status)) return this.finish(listed.job?.status ?? {});
          rv = listed.resourceVersion;
        }
        const started = Date.now();
        const closed = await this.watchOnce(rv);
        if (this.stopped || this.finished) return;
        if (closed.err === null && (closed.events > 0 || Date.now() - started > 1000)) {
          // A normal close (the server ends watches after a while): go on from the last event.
          rv = closed.rv;
          this.backoff.reset();
          failingSince = undefined;
          continue;
        }
        if (closed.err instanceof Error) throw closed.err;
        throw new Error(closed.err ? describeError(closed.err) : 'the watch closed at once without an event');
      } catch (err) {
        const why = describeError(err);
        this.recoveries.push(why);
        failingSince ??= Date.now();
        if (Date.now() - failingSince > this.giveUpAfterMs) {
          const seconds = Math.round(this.giveUpAfterMs / 1000);
          throw new Error(`watch of EncryptionJob ${this.opts.label} kept failing for ${seconds} s: ${why}`);
        }
        // List again after the pause: the job may have finished while no watch was open.
        rv = undefined;
        await sleep(this.backoff.next());
      }
    }
  }

  /** One watch from rv until it closes. */
  private watchOnce(rv: string): Promise<Closed> {
    return new Promise((resolve) => {
      let last = rv;
      let events = 0;
      let closeErr: unknown = null;
      const onEvent = (type: string, obj: JobObject): void => {
        if (type === 'ERROR') {
          // A Status object inside the stream (410 Gone: rv too old): the watch is over.
          const code = (obj as { code?: number }).code;
          closeErr = Object.assign(new Error(`watch event ERROR ${JSON.stringify(obj).slice(0, 200)}`), { code });
          this.abortWatch?.();
          return;
        }
        events++;
        last = obj.metadata?.resourceVersion ?? last;
        if (type === 'DELETED') this.end(new Error(`EncryptionJob ${this.opts.label} was deleted before it finished`));
        else if (isFinished(obj.status)) this.finish(obj.status ?? {});
      };
      this.source
        .watch(rv, onEvent, (err) => resolve({ err: err ?? closeErr, rv: last, events }))
        .then(
          (abort) => {
            this.abortWatch = abort;
            if (this.stopped || this.finished) abort();
          },
          (err: unknown) => resolve({ err, rv: last, events }),
        );
    });
  }
}

/** Follows one job until it finishes, re-listing and re-watching through transient failures. */
export function followJob(source: JobSource, opts: FollowOptions): Follow {
  return new JobFollower(source, opts);
}

/** The real apiserver: list and watch the one EncryptionJob by name (field selector). */
export function apiJobSource(kc: KubeConfig, namespace: string, name: string): JobSource {
  const api = kc.makeApiClient(CustomObjectsApi);
  const fieldSelector = `metadata.name=${name}`;
  return {
    async list() {
      const out = (await api.listNamespacedCustomObject({
        group: 's3encryption.dev',
        version: 'v1alpha1',
        namespace,
        plural: 'encryptionjobs',
        fieldSelector,
      })) as { metadata?: { resourceVersion?: string }; items?: JobObject[] };
      const rv = out.metadata?.resourceVersion;
      if (!rv) throw new Error(`list of EncryptionJob ${namespace}/${name} had no resourceVersion`);
      return { resourceVersion: rv, job: out.items?.[0] };
    },
    async watch(resourceVersion, onEvent, onClose) {
      const controller = await new Watch(kc).watch(
        `/apis/s3encryption.dev/v1alpha1/namespaces/${namespace}/encryptionjobs`,
        { fieldSelector, resourceVersion, allowWatchBookmarks: true },
        (type: string, obj: JobObject) => {
          // Bookmarks only move the resourceVersion on.
          if (type === 'BOOKMARK') onEvent('BOOKMARK', { metadata: obj.metadata ?? {} });
          else onEvent(type, obj);
        },
        onClose,
      );
      return () => controller.abort();
    },
  };
}
