// Assuming an IAM role for every S3 and KMS call. A small STS stand-in on
// loopback answers AssumeRole with known temporary credentials and records the
// request; a recording forwarder in front of moto shows which access key
// signed every S3 call.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { runEngine } from '../../src/engine/index.js';
import { createBucket, putObjects, s3Client } from '../harness/context.js';

const ROLE_KEY = 'ASIAROLETESTKEY00001';
const stsRequests: string[] = [];
const s3Signers = new Set<string>();
let sts: Server;
let forwarder: Server;

function url(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  sts = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      stsRequests.push(body);
      const expiry = new Date(Date.now() + 3600_000).toISOString();
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(
        `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>` +
          `<AccessKeyId>${ROLE_KEY}</AccessKeyId><SecretAccessKey>role-secret</SecretAccessKey><SessionToken>role-token</SessionToken>` +
          `<Expiration>${expiry}</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/encryptor/s</Arn>` +
          `<AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>`,
      );
    });
  });
  const moto = new URL(inject('moto').s3Endpoint);
  forwarder = createServer((req, res) => {
    const cred = /Credential=([^/]+)\//.exec(req.headers.authorization ?? '');
    if (cred?.[1]) s3Signers.add(cred[1]);
    const upstream = request(
      { host: moto.hostname, port: moto.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    req.pipe(upstream);
  });
  await Promise.all([sts, forwarder].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
});

afterAll(async () => {
  await Promise.all([sts, forwarder].map((s) => new Promise((r) => s.close(r))));
});

describe('connection.roleArn', () => {
  it('assumes the role through STS and signs every S3 call with its credentials', async () => {
    const info = inject('moto');
    const s3 = s3Client(info);
    const bucket = await createBucket(s3, 'role');
    await putObjects(s3, bucket, ['r/1', 'r/2']);
    const result = await runEngine({
      bucket,
      prefix: '',
      target: { type: 'AES256' },
      connection: {
        endpoint: url(forwarder),
        kmsEndpoint: info.kmsEndpoint,
        stsEndpoint: url(sts),
        region: info.region,
        forcePathStyle: true,
        credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey },
        roleArn: 'arn:aws:iam::123456789012:role/encryptor',
        externalId: 'job-42',
      },
    });
    expect(result.counters).toMatchObject({ scanned: 2, encrypted: 2 });
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'r/1' }))).ServerSideEncryption).toBe('AES256');
    expect(stsRequests).toHaveLength(1);
    expect(stsRequests[0]).toContain('Action=AssumeRole');
    expect(stsRequests[0]).toContain('RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fencryptor');
    expect(stsRequests[0]).toContain('ExternalId=job-42');
    expect([...s3Signers]).toEqual([ROLE_KEY]);
    s3.destroy();
  });

  it('a malformed role ARN is refused before any call', async () => {
    const result = await runEngine({
      bucket: 'any-bucket',
      prefix: '',
      target: { type: 'AES256' },
      connection: { roleArn: 'role/encryptor' },
    });
    expect(result).toMatchObject({ status: 'Failed', reason: 'InvalidSpec' });
    expect(result.message).toContain('connection.roleArn');
  });
});
