// The bench's follower of one EncryptionJob (bench/lib/job-watch.ts) against a scripted
// apiserver: every transient end of a watch leads to a re-list and a watch from the list's
// resourceVersion, never to a lost row. The real apiserver with a 429 is in
// test/bench/job-watch.test.ts.
import { describe, expect, it } from 'vitest';
import { followJob, type JobObject, type JobSource } from '../../bench/lib/job-watch.js';

const complete = { conditions: [{ type: 'Complete', status: 'True' }] };
const running = { conditions: [{ type: 'Complete', status: 'False' }] };
const job = (rv: string, status = running): JobObject => ({ metadata: { name: 'j', resourceVersion: rv }, status });

type WatchScript = (
  rv: string,
  onEvent: (type: string, obj: JobObject) => void,
  onClose: (err: unknown) => void,
) => void;

/** Lists answer in turn (an Error is thrown), watches run their script in turn; both are recorded. */
function scripted(lists: ({ resourceVersion: string; job?: JobObject } | Error)[], watches: WatchScript[]) {
  const calls: string[] = [];
  const source: JobSource = {
    list() {
      const next = lists.shift();
      calls.push('list');
      if (!next) return Promise.reject(new Error('no more lists scripted'));
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    },
    watch(rv, onEvent, onClose) {
      calls.push(`watch@${rv}`);
      const script = watches.shift();
      // Like client-node: the callbacks run after watch() has returned its abort.
      setTimeout(() => (script ? script(rv, onEvent, onClose) : undefined), 5);
      return Promise.resolve(() => onClose(null));
    },
  };
  return { source, calls };
}

const tooMany = (): Error => Object.assign(new Error('Too Many Requests'), { statusCode: 429 });
const fast = { label: 'bench/j', firstBackoffMs: 1, maxBackoffMs: 5 };

describe('the bench follows its EncryptionJob through watch failures', () => {
  it('a 429 on the watch: lists again, sees the job Complete there, and says it recovered', async () => {
    const { source, calls } = scripted(
      [{ resourceVersion: '10' }, { resourceVersion: '20', job: job('20', complete) }],
      [(_rv, _e, close) => close(tooMany())],
    );
    const f = followJob(source, fast);
    await f.opened;
    await expect(f.status).resolves.toEqual(complete);
    expect(calls).toEqual(['list', 'watch@10', 'list']);
    expect(f.recoveries).toEqual(['429 Too Many Requests']);
  });

  it('a 429 while the job runs: watches again from the new list, so the Complete event is still seen', async () => {
    const { source, calls } = scripted(
      [{ resourceVersion: '10' }, { resourceVersion: '15', job: job('15') }],
      [(_rv, e, close) => (e('ADDED', job('11')), close(tooMany())), (_rv, e) => e('MODIFIED', job('16', complete))],
    );
    const f = followJob(source, fast);
    await expect(f.status).resolves.toEqual(complete);
    expect(calls).toEqual(['list', 'watch@10', 'list', 'watch@15']);
  });

  it('a normal close after events: watches again from the last event, without a list', async () => {
    const { source, calls } = scripted(
      [{ resourceVersion: '10' }],
      [(_rv, e, close) => (e('ADDED', job('12')), close(null)), (_rv, e) => e('MODIFIED', job('13', complete))],
    );
    const f = followJob(source, fast);
    await expect(f.status).resolves.toEqual(complete);
    expect(calls).toEqual(['list', 'watch@10', 'watch@12']);
    expect(f.recoveries).toEqual([]);
  });

  it('410 Gone inside the stream and a failed list are transient too', async () => {
    const { source, calls } = scripted(
      [{ resourceVersion: '10' }, new Error('socket hang up'), { resourceVersion: '30', job: job('30', complete) }],
      [(_rv, e, close) => (e('ERROR', { code: 410 } as JobObject), close(null))],
    );
    const f = followJob(source, fast);
    await expect(f.status).resolves.toEqual(complete);
    expect(calls).toEqual(['list', 'watch@10', 'list', 'list']);
    expect(f.recoveries).toHaveLength(2);
  });

  it('an apiserver that never answers: fails with the job and the last error after the give-up time, opened too', async () => {
    const { source } = scripted(
      Array.from({ length: 1000 }, () => tooMany()),
      [],
    );
    const f = followJob(source, { ...fast, giveUpAfterMs: 50 });
    await expect(f.opened).rejects.toThrow(/EncryptionJob bench\/j kept failing .*429 Too Many Requests/);
    await expect(f.status).rejects.toThrow(/kept failing/);
  });

  it('a job deleted before it finished is an error, not a wait', async () => {
    const { source } = scripted([{ resourceVersion: '10' }], [(_rv, e) => e('DELETED', job('11'))]);
    const f = followJob(source, fast);
    await expect(f.status).rejects.toThrow(/bench\/j was deleted/);
  });
});
