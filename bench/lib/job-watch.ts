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

/** Follows one job until it finishes, re-listing and re-watching through transient failures. */
export function followJob(source: JobSource, opts: FollowOptions): Follow {
  const backoff = new Backoff(opts.firstBackoffMs ?? 100, opts.maxBackoffMs ?? 2000);
  const giveUpAfterMs = opts.giveUpAfterMs ?? 600_000;
  const recoveries: string[] = [];
  let stopped = false;
  let abortWatch: (() => void) | undefined;
  let settle!: (s: JobStatus) => void;
  let fail!: (e: unknown) => void;
  const status = new Promise<JobStatus>((res, rej) => {
    settle = res;
    fail = rej;
  });
  // Handled where it is awaited; this keeps an early failure from counting as unhandled before then.
  status.catch(() => undefined);
  let markOpened!: () => void;
  const opened = new Promise<void>((res) => (markOpened = res));
  let finished = false;
  const finish = (s: JobStatus): void => {
    finished = true;
    abortWatch?.();
    settle(s);
  };
  const end = (err: unknown): void => {
    finished = true;
    abortWatch?.();
    fail(err);
  };

  /** One watch from rv until it closes: the error it closed with (null: normal) and the last resourceVersion seen. */
  const watchOnce = (rv: string): Promise<{ err: unknown; rv: string; events: number }> =>
    new Promise((resolve) => {
      let last = rv;
      let events = 0;
      let closeErr: unknown = null;
      const onEvent = (type: string, obj: JobObject): void => {
        if (type === 'ERROR') {
          // A Status object inside the stream (410 Gone: rv too old): the watch is over.
          closeErr = Object.assign(new Error(`watch event ERROR ${JSON.stringify(obj).slice(0, 200)}`), {
            code: (obj as { code?: number }).code,
          });
          abortWatch?.();
          return;
        }
        events++;
        last = obj.metadata?.resourceVersion ?? last;
        if (type === 'DELETED') end(new Error(`EncryptionJob ${opts.label} was deleted before it finished`));
        else if (isFinished(obj.status)) finish(obj.status ?? {});
      };
      source
        .watch(rv, onEvent, (err) => resolve({ err: err ?? closeErr, rv: last, events }))
        .then(
          (abort) => {
            abortWatch = abort;
            if (stopped || finished) abort();
          },
          (err: unknown) => resolve({ err, rv: last, events }),
        );
    });

  const loop = async (): Promise<void> => {
    let rv: string | undefined;
    let failingSince: number | undefined;
    let lastError = '';
    while (!stopped && !finished) {
      try {
        if (rv === undefined) {
          const listed = await source.list();
          markOpened();
          failingSince = undefined;
          if (isFinished(listed.job?.status)) return finish(listed.job?.status ?? {});
          rv = listed.resourceVersion;
        }
        const started = Date.now();
        const closed = await watchOnce(rv);
        if (stopped || finished) return;
        if (closed.err === null && (closed.events > 0 || Date.now() - started > 1000)) {
          // A normal close (the server ends watches after a while): go on from the last event.
          rv = closed.rv;
          backoff.reset();
          failingSince = undefined;
          continue;
        }
        if (closed.err instanceof Error) throw closed.err;
        throw new Error(closed.err ? describeError(closed.err) : 'the watch closed at once without an event');
      } catch (err) {
        lastError = describeError(err);
        recoveries.push(lastError);
        failingSince ??= Date.now();
        if (Date.now() - failingSince > giveUpAfterMs) {
          throw new Error(
            `watch of EncryptionJob ${opts.label} kept failing for ${Math.round(giveUpAfterMs / 1000)} s: ${lastError}`,
          );
        }
        // List again after the pause: the job may have finished while no watch was open.
        rv = undefined;
        await sleep(backoff.next());
      }
    }
  };
  loop().catch(end);

  return {
    // A follower that gives up before its first list must not leave the caller waiting here.
    opened: Promise.race([opened, status.then(() => undefined)]),
    status,
    recoveries,
    stop() {
      stopped = true;
      abortWatch?.();
      markOpened();
    },
  };
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
