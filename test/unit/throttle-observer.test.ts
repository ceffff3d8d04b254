// The request observer tells throttling (SlowDown) from other retried errors,
// attempt by attempt, against a local HTTP server that answers as S3 would.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ListBucketsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients, type RequestEvent } from '../../src/engine/index.js';

const EMPTY =
  '<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult><Owner><ID>o</ID></Owner><Buckets></Buckets></ListAllMyBucketsResult>';
const error = (code: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>m</Message></Error>`;

let server: Server;
const script: { status: number; body: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    const next = script.shift() ?? { status: 200, body: EMPTY };
    res.writeHead(next.status, { 'content-type': 'application/xml' });
    res.end(next.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});
afterAll(() => new Promise((r) => server.close(r)));

async function call(): Promise<RequestEvent> {
  const events: RequestEvent[] = [];
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clients = createClients(
    { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } },
    { observer: (e) => events.push(e) },
  );
  await clients.s3.send(new ListBucketsCommand({})).catch(() => undefined);
  clients.destroy();
  expect(events).toHaveLength(1);
  return events[0]!;
}

describe('request observer', () => {
  it('counts a SlowDown that a retry got through as throttled', async () => {
    script.push({ status: 503, body: error('SlowDown') });
    const e = await call();
    expect(e).toMatchObject({ operation: 'ListBuckets', attempts: 2, throttled: true });
    expect(e.error).toBeUndefined();
  });
  it('does not count a retried 500 as throttling', async () => {
    script.push({ status: 500, body: error('InternalError') });
    const e = await call();
    expect(e).toMatchObject({ attempts: 2, throttled: false });
  });
  it('a plain success is neither retried nor throttled', async () => {
    expect(await call()).toMatchObject({ attempts: 1, throttled: false });
  });
});
