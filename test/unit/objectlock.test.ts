// ObjectLockReader's reasoning when a least-privilege identity may read neither
// the bucket's lock configuration nor an object's retention (issue 20, scenario
// 11): versioning not Enabled rules object lock out; otherwise we cannot tell,
// and the object fails with a message that says so. (Proven against SeaweedFS in
// test/engine/least-privilege.test.ts; this pins the reasoning branch by branch.)
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import type { ObjectState } from '../../src/engine/object/inspect.js';
import { LockUnreadableError, ObjectLockReader } from '../../src/engine/object/objectlock.js';

const denied = (): Error =>
  Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });

/** Every call is denied; counts what was asked. */
function deniedS3(asked: string[]): S3Client {
  return {
    send: (command: { constructor: { name: string } }) => {
      asked.push(command.constructor.name.replace(/Command$/, ''));
      return Promise.reject(denied());
    },
  } as unknown as S3Client;
}

const object = (): ObjectState => ({ key: 'k', size: 1, etag: '"e"', storageClass: 'STANDARD', metadata: {} });

describe('ObjectLockReader with every lock read denied', () => {
  it('versioning not Enabled: no object lock, the object is not failed, and no object is asked', async () => {
    const asked: string[] = [];
    const reader = new ObjectLockReader(deniedS3(asked), 'b', () => undefined, false);
    await expect(reader.complete(object())).resolves.toBeUndefined();
    await expect(reader.complete(object())).resolves.toBeUndefined();
    expect(asked).toEqual(['GetObjectLockConfiguration']);
  });

  it('versioning Enabled: cannot tell; the object fails, and the message says the lock may be there', async () => {
    const reader = new ObjectLockReader(deniedS3([]), 'b', () => undefined, true);
    const err = await reader.complete(object()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LockUnreadableError);
    expect((err as Error).message).toMatch(/may be in a bucket with object lock.*versioning is Enabled/);
    expect((err as Error).message).not.toMatch(/is in a bucket with object lock/);
  });

  it('versioning unreadable: cannot tell either', async () => {
    const reader = new ObjectLockReader(deniedS3([]), 'b', () => undefined, undefined);
    await expect(reader.complete(object())).rejects.toThrow(/versioning could not be read/);
  });
});
