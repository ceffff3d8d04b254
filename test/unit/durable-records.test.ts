// Issue 20, scenario 6 (unit part): a record that must be durable is durable.
// StatusWriter.durable resolves only once its patch is written and rejects when
// it could not be; an upload journal whose record fails rejects as transient
// (CheckpointWriteFailed), and a multipart copy then aborts its upload and
// copies no part. The same against the real apiserver: test/controller/durable-records.test.ts.
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import type { EncryptionJobStatus } from '../../src/controller/api.js';
import type { KubeClient } from '../../src/controller/kubeclient.js';
import { StatusWriteError, StatusWriter } from '../../src/controller/status.js';
import { multipartCopyInPlace } from '../../src/engine/object/copy.js';
import { CheckpointWriteFailed, errorCode, isTransient } from '../../src/engine/s3/errors.js';
import type { ObjectState } from '../../src/engine/object/inspect.js';
import { OpenUploads } from '../../src/engine/object/uploads.js';
import { createLogger } from '../../src/log.js';

const log = createLogger('silent');

/** A KubeClient whose status writes fail while `failing` is true. */
function client(failing: { on: boolean; code?: number }): { kube: KubeClient; written: EncryptionJobStatus[] } {
  const written: EncryptionJobStatus[] = [];
  const kube = {
    patchStatus: (_ns: string, _name: string, status: EncryptionJobStatus) => {
      if (failing.on) return Promise.reject(Object.assign(new Error('apiserver unreachable'), { code: failing.code }));
      written.push(status);
      return Promise.resolve({});
    },
  } as unknown as KubeClient;
  return { kube, written };
}

describe('scenario 6: a record that must be durable is durable (StatusWriter)', () => {
  it('a KubeClient whose patchStatus rejects: a durable write rejects within its bound, a coalesced one still resolves', async () => {
    const { kube } = client({ on: true });
    const writer = new StatusWriter(kube, 'ns', 'job', log, 10);
    const started = Date.now();
    await expect(writer.durable({ phase: 'Running' }, 600)).rejects.toBeInstanceOf(StatusWriteError);
    expect(Date.now() - started).toBeLessThan(3000);
    await expect(writer.update({ phase: 'Running' }, true)).resolves.toBeUndefined();
    expect(await writer.settle(300)).toBe(false);
    writer.dispose();
  });

  it('resolves once the write lands, after a failure within the bound', async () => {
    const failing = { on: true };
    const { kube, written } = client(failing);
    const writer = new StatusWriter(kube, 'ns', 'job', log, 10);
    setTimeout(() => (failing.on = false), 300);
    await writer.durable({ checkpoint: { openUploads: [{ key: 'k', uploadId: 'u1' }] } }, 5000);
    expect(written.at(-1)?.checkpoint?.openUploads).toEqual([{ key: 'k', uploadId: 'u1' }]);
    expect(await writer.settle(1000)).toBe(true);
    writer.dispose();
  });

  it('the job is gone (404): the durable write rejects at once, naming why', async () => {
    const { kube } = client({ on: true, code: 404 });
    const writer = new StatusWriter(kube, 'ns', 'job', log, 10);
    await expect(writer.durable({ phase: 'Running' }, 5000)).rejects.toThrow(/the job is gone/);
    expect(await writer.settle(1000)).toBe(false);
    writer.dispose();
  });
});

describe('scenario 6: a record that must be durable is durable (engine)', () => {
  it('an upload whose record fails rejects as transient CheckpointWriteFailed', async () => {
    const journal = new OpenUploads([], () => Promise.reject(new StatusWriteError('no answer')));
    const err: unknown = await journal.opened({ key: 'big', uploadId: 'u1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointWriteFailed);
    expect(errorCode(err)).toBe('CheckpointWriteFailed');
    expect(isTransient(err, 3)).toBe(true);
    expect(String(err)).toContain('u1');
  });

  it('a multipart copy whose upload cannot be recorded copies no part and aborts the upload', async () => {
    const sent: string[] = [];
    const s3 = {
      send: (command: { constructor: { name: string } }) => {
        const name = command.constructor.name;
        sent.push(name);
        if (name === 'GetObjectTaggingCommand') return Promise.resolve({ TagSet: [] });
        if (name === 'CreateMultipartUploadCommand') return Promise.resolve({ UploadId: 'u1' });
        if (name === 'AbortMultipartUploadCommand') return Promise.resolve({});
        return Promise.reject(new Error(`unexpected ${name}`));
      },
    } as unknown as S3Client;
    const state: ObjectState = {
      key: 'big',
      size: 20 * 1024 * 1024,
      etag: '"e"',
      storageClass: 'STANDARD',
      metadata: {},
    };
    const journal = new OpenUploads([], () => Promise.reject(new StatusWriteError('no answer')));
    const err: unknown = await multipartCopyInPlace(s3, state, {
      bucket: 'b',
      target: { type: 'AES256' },
      defaultPartSize: 5 * 1024 * 1024,
      uploads: journal,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointWriteFailed);
    expect(sent).not.toContain('UploadPartCopyCommand');
    expect(sent).toContain('AbortMultipartUploadCommand');
    expect(journal.list()).toEqual([]);
  });
});
