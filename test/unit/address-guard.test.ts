// The endpoint rule judges the address, not the spelling (issue 20, scenario 12;
// operator review m1): every spelling of a metadata address is refused by the tenancy
// check, and a name is judged on the addresses it resolves to, at connect time, by the
// guard's own lookup (so the address checked is the address connected to). The same
// guard against SeaweedFS: test/engine/endpoint-guard.test.ts.
import type { LookupAddress } from 'node:dns';
import { Agent, createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { EncryptionJob } from '../../src/controller/api.js';
import { addressGuardFor, checkTenancy, defaultPolicy, type TenancyPolicy } from '../../src/controller/tenancy.js';
import { embeddedIPv4, EndpointNotAllowed, type Resolver } from '../../src/engine/s3/address-guard.js';

const policy = (extra: Partial<TenancyPolicy> = {}): TenancyPolicy => ({ ...defaultPolicy('op'), ...extra });
const at = (endpoint: string): EncryptionJob => ({
  metadata: { namespace: 'team-a', name: 'j' },
  spec: {
    bucket: 'b-1',
    encryption: { type: 'AES256' },
    connection: { endpoint, credentialsSecretRef: { name: 's' } },
  },
});

const REFUSED = [
  'http://169.254.169.254/latest',
  'http://[::ffff:169.254.169.254]/',
  'http://[::ffff:a9fe:a9fe]:80/',
  'http://[0:0:0:0:0:ffff:a9fe:a9fe]/',
  'http://[::169.254.169.254]/', // IPv4-compatible
  'http://[::ffff:0:a9fe:a9fe]/', // SIIT
  'http://[64:ff9b::169.254.169.254]/', // NAT64
  'http://[64:ff9b:1::a9fe:a9fe]/', // local-use NAT64
  'http://[2002:a9fe:a9fe::1]/', // 6to4
  'http://2852039166/', // decimal
  'http://0xa9fea9fe/', // hex
  'http://0251.0376.0251.0376/', // octal
  'http://0xa9.254.43518/', // mixed
  'http://169.254.169.254./', // trailing dot
  'http://169.254.170.2/v2/credentials', // ECS task credentials
  'http://169.254.170.23/', // EKS Pod Identity
  'http://[fe80::1]/',
  'http://[fd00:ec2::254]/',
  'http://[fd00:ec2::23]/',
  'http://100.100.100.200/', // Alibaba Cloud
  'http://168.63.129.16/', // Azure WireServer
  'http://metadata.google.internal/',
  'http://METADATA.google.internal./',
];

const ALLOWED = [
  'http://127.0.0.1:8333',
  'http://[::1]:8333',
  'http://localhost:8333',
  'https://s3.eu-west-1.amazonaws.com',
  'http://minio.storage.svc:9000',
  'http://10.0.0.5:9000',
  'http://[fd00::1]:9000',
  'http://[2001:db8::1]/',
];

describe('scenario 12: the endpoint rule judges the address, not the spelling', () => {
  it.each(REFUSED)('refuses %s', (endpoint) => {
    const refused = checkTenancy(at(endpoint), policy());
    expect(refused, endpoint).toMatchObject({ reason: 'EndpointNotAllowed' });
    expect(refused?.message).toMatch(/not allowed: .*--allowed-endpoint-hosts/);
  });

  it.each(ALLOWED)('allows %s', (endpoint) => {
    expect(checkTenancy(at(endpoint), policy())).toBeUndefined();
  });

  it('the message says where the connection would really go', () => {
    expect(checkTenancy(at('http://[::ffff:a9fe:a9fe]/'), policy())?.message).toMatch(
      /"\[::ffff:a9fe:a9fe\]" is not allowed: ::ffff:a9fe:a9fe is 169\.254\.169\.254, link-local/,
    );
    expect(checkTenancy(at('http://2852039166/'), policy())?.message).toMatch(/169\.254\.169\.254 is link-local/);
  });

  it('a host the admin named is allowed; a wildcard is not a name', () => {
    expect(checkTenancy(at('http://169.254.10.10:9000'), policy({ endpointHosts: ['169.254.10.10:9000'] }))).toBe(
      undefined,
    );
    expect(checkTenancy(at('http://[::ffff:169.254.169.254]/'), policy({ endpointHosts: ['*'] }))).toMatchObject({
      reason: 'EndpointNotAllowed',
    });
  });

  it('finds the IPv4 address in each transition scheme', () => {
    expect(embeddedIPv4('::ffff:a9fe:a9fe')).toEqual(['169.254.169.254']);
    expect(embeddedIPv4('64:ff9b::a9fe:a9fe')).toEqual(['169.254.169.254']);
    expect(embeddedIPv4('2002:a9fe:a9fe::1')).toEqual(['169.254.169.254']);
    // Teredo: the server's address, and the client's (bits inverted).
    expect(embeddedIPv4('2001:0:a9fe:a9fe::5601:5601')).toEqual(['169.254.169.254', '169.254.169.254']);
    expect(embeddedIPv4('2001:db8::1')).toEqual([]);
    expect(embeddedIPv4('not an address')).toEqual([]);
  });
});

/** A resolver with fixed answers, as DNS would give them. */
function resolver(answers: Record<string, string[]>): Resolver {
  return (hostname, _options, callback) => {
    const found = answers[hostname];
    if (!found) return callback(Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
    callback(
      null,
      found.map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  };
}

function lookupOnce(
  guard: ReturnType<typeof addressGuardFor>,
  host: string,
  all: boolean,
): Promise<{ err: Error | null; address: unknown }> {
  return new Promise((resolve) => guard.lookup(host, { all }, (err, address) => resolve({ err, address })));
}

describe('scenario 12: a name is judged on the addresses it resolves to', () => {
  const guard = addressGuardFor(
    policy({ endpointHosts: [] }),
    resolver({
      'imds.example': ['169.254.169.254'],
      'mixed.example': ['10.0.0.1', '::ffff:169.254.169.254'],
      'nat64.example': ['64:ff9b::a9fe:a9fe'],
      'storage.example': ['127.0.0.1', '::1'],
    }),
  );

  it('refuses a name with any denied address, naming the name and the address', async () => {
    for (const host of ['imds.example', 'mixed.example', 'nat64.example']) {
      const { err } = await lookupOnce(guard, host, false);
      expect(err, host).toBeInstanceOf(EndpointNotAllowed);
      expect(err?.message).toMatch(new RegExp(`"${host}" resolves to .*169\\.254\\.169\\.254`));
    }
  });

  it('answers as dns.lookup does for an allowed name (one address, or all)', async () => {
    expect(await lookupOnce(guard, 'storage.example', false)).toEqual({ err: null, address: '127.0.0.1' });
    const all = await lookupOnce(guard, 'storage.example', true);
    expect(all.address).toEqual([
      { address: '127.0.0.1', family: 4 },
      { address: '::1', family: 6 },
    ]);
  });

  it('an agent it protects refuses before connecting: a name, and an IP literal (which never reaches a lookup)', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    let connections = 0;
    server.on('connection', () => connections++);
    const agent = guard.protect(new Agent({ keepAlive: false }));
    const fetchVia = (url: string): Promise<string> =>
      new Promise((resolve, reject) => {
        get(url, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(String(res.statusCode)));
        }).on('error', reject);
      });
    try {
      await expect(fetchVia(`http://imds.example:${port}/`)).rejects.toBeInstanceOf(EndpointNotAllowed);
      await expect(fetchVia(`http://[::ffff:169.254.169.254]:${port}/`)).rejects.toThrow(
        /169\.254\.169\.254, link-local/,
      );
      expect(connections).toBe(0);
      // Resolved by the guard and connected to the address it checked.
      expect(await fetchVia(`http://storage.example:${port}/`)).toBe('200');
      expect(connections).toBe(1);
    } finally {
      agent.destroy();
      server.close();
    }
  });
});
