// The endpoint rule judges the address, not the spelling (issue 20, scenario 12;
// operator review m1), on SeaweedFS: the operator's address guard (tenancy policy ->
// engine clients) resolves every name itself and refuses a metadata address at connect
// time, so a name that resolves to 169.254.169.254, or an IPv4-mapped literal, gets no
// request, while a name that resolves to the loopback SeaweedFS works. Names are
// answered by an injected resolver (as DNS would answer), so /etc/hosts is untouched.
import type { LookupAddress } from 'node:dns';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { addressGuardFor, defaultPolicy } from '../../src/controller/tenancy.js';
import { EndpointNotAllowed, type Resolver } from '../../src/engine/s3/address-guard.js';
import { createClients } from '../../src/engine/s3/clients.js';
import { runEngine, type RunResult } from '../../src/engine/index.js';
import { sampleKeys } from '../../src/engine/keys/shards.js';
import { connectionFor, createBucket, enginePlan, putObjects, s3Client } from '../harness/context.js';

const info = inject('seaweed');
const port = new URL(info.s3Endpoint).port;
let s3: S3Client;
let bucket: string;
const keys = Array.from({ length: 24 }, (_, i) => `g/${String(i).padStart(2, '0')}`);

/** As DNS would answer: fixed names, and one that changes its answer after the first lookup (rebinding). */
function testResolver(): { resolve: Resolver; lookups: string[] } {
  const lookups: string[] = [];
  const fixed: Record<string, string> = {
    'imds.test': '169.254.169.254',
    'mapped.test': '::ffff:169.254.169.254',
    'storage.test': '127.0.0.1',
  };
  const resolve: Resolver = (hostname, _options, callback) => {
    lookups.push(hostname);
    const rebound = hostname === 'rebind.test' && lookups.filter((h) => h === hostname).length > 1;
    const address = rebound ? '169.254.169.254' : hostname === 'rebind.test' ? '127.0.0.1' : fixed[hostname];
    if (!address) return callback(Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
    callback(null, [{ address, family: address.includes(':') ? 6 : 4 } satisfies LookupAddress]);
  };
  return { resolve, lookups };
}

async function runAt(endpoint: string, resolve: Resolver, concurrency = 8): Promise<RunResult> {
  const connection = connectionFor(info, { endpoint });
  const clients = createClients(connection, { addressGuard: addressGuardFor(defaultPolicy('op'), resolve) });
  try {
    return await runEngine(enginePlan(info, bucket, { type: 'AES256' }, { connection, concurrency }), { clients });
  } finally {
    clients.destroy();
  }
}

beforeAll(async () => {
  s3 = s3Client(info);
  bucket = await createBucket(s3, 'guard');
  await putObjects(s3, bucket, keys);
});
afterAll(() => s3?.destroy());

describe('the address guard on the engine clients (SeaweedFS)', () => {
  it('scenario 12: a name that resolves to a metadata address is refused before connecting, with the address named', async () => {
    for (const host of ['imds.test', 'mapped.test']) {
      const { resolve } = testResolver();
      const result = await runAt(`http://${host}:${port}`, resolve);
      expect(result).toMatchObject({ status: 'Failed', reason: 'EndpointNotAllowed', retryable: false });
      expect(result.message).toMatch(
        new RegExp(`"${host}" resolves to a denied address: .*169\\.254\\.169\\.254.* link-local`),
      );
      expect(result.counters.scanned).toBe(0);
    }
  });

  it('scenario 12: shard planning is refused the same way (a reason for a person, not a retry)', async () => {
    const { resolve } = testResolver();
    const connection = connectionFor(info, { endpoint: `http://imds.test:${port}` });
    const clients = createClients(connection, { addressGuard: addressGuardFor(defaultPolicy('op'), resolve) });
    try {
      await expect(sampleKeys(clients.s3, { bucket, prefix: '', maxRequests: 4 })).rejects.toBeInstanceOf(
        EndpointNotAllowed,
      );
    } finally {
      clients.destroy();
    }
  });

  it('scenario 12: an IPv4-mapped literal is refused by the engine as well, without a lookup', async () => {
    const { resolve, lookups } = testResolver();
    const result = await runAt(`http://[::ffff:169.254.169.254]:${port}`, resolve);
    expect(result).toMatchObject({ status: 'Failed', reason: 'EndpointNotAllowed', retryable: false });
    expect(result.message).toMatch(/::ffff:a9fe:a9fe is 169\.254\.169\.254, link-local/);
    expect(lookups).toEqual([]);
  });

  it('scenario 12: a name that resolves to the loopback server works, through the lean path too', async () => {
    const { resolve, lookups } = testResolver();
    const result = await runAt(`http://storage.test:${port}`, resolve);
    expect(result.recentFailures).toEqual([]);
    expect(result).toMatchObject({ status: 'Complete' });
    expect(result.counters).toMatchObject({ scanned: keys.length, failed: 0 });
    // The guard resolved the name: nothing went to the system's DNS (which does not know it).
    expect(lookups.length).toBeGreaterThan(0);
    for (const key of keys) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      expect(head.ServerSideEncryption, key).toBe('AES256');
    }
  });

  it('scenario 12: a name whose answer changes to a metadata address mid-run (rebinding) stops the run at the next connection', async () => {
    const { resolve, lookups } = testResolver();
    const result = await runAt(`http://rebind.test:${port}`, resolve, 16);
    expect(lookups.filter((h) => h === 'rebind.test').length).toBeGreaterThan(1);
    // Wherever the refused connection came (the listing, or an object's HEAD): the job's reason, not an outage.
    expect(result).toMatchObject({ status: 'Failed', reason: 'EndpointNotAllowed', retryable: false });
    expect(result.message).toMatch(/"rebind\.test" resolves to a denied address: 169\.254\.169\.254 is link-local/);
  });
});
