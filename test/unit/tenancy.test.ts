// The tenancy policy as a pure function: each rule, each default, without a server.
// The same rules against the real apiserver and SeaweedFS: test/controller/tenancy.test.ts.
import { describe, expect, it } from 'vitest';
import type { EncryptionJob, EncryptionJobSpec } from '../../src/controller/api.js';
import {
  checkTenancy,
  clip,
  defaultPolicy,
  globMatch,
  parseRoleRules,
  type TenancyPolicy,
} from '../../src/controller/tenancy.js';
import { manifestKey, partKey } from '../../src/engine/bookkeeping/report-upload.js';

function job(namespace: string, spec: Partial<EncryptionJobSpec> = {}): EncryptionJob {
  return {
    metadata: { namespace, name: 'j' },
    spec: { bucket: 'team-a-data', encryption: { type: 'AES256' }, ...spec },
  };
}

const OPERATOR_NS = 's3-encryption-operator';
const secret = { credentialsSecretRef: { name: 's3-credentials' } };
const policy = (extra: Partial<TenancyPolicy> = {}): TenancyPolicy => ({ ...defaultPolicy(OPERATOR_NS), ...extra });

describe('ambient identity', () => {
  it('by default only the operator namespace may use it', () => {
    expect(checkTenancy(job(OPERATOR_NS), policy())).toBeUndefined();
    expect(checkTenancy(job('team-a'), policy())).toMatchObject({ reason: 'IdentityNotAllowed' });
    expect(checkTenancy(job('team-a'), policy())?.message).toContain('credentialsSecretRef');
  });

  it('a job with its own Secret never needs it', () => {
    expect(checkTenancy(job('team-a', { connection: secret }), policy())).toBeUndefined();
    expect(checkTenancy(job('team-a', { connection: secret }), policy({ ambientNamespaces: [] }))).toBeUndefined();
  });

  it('the admin lists namespaces, or "*"', () => {
    expect(checkTenancy(job('team-a'), policy({ ambientNamespaces: ['team-a'] }))).toBeUndefined();
    expect(checkTenancy(job('team-b'), policy({ ambientNamespaces: ['team-a'] }))).toMatchObject({
      reason: 'IdentityNotAllowed',
    });
    expect(checkTenancy(job('team-b'), policy({ ambientNamespaces: ['*'] }))).toBeUndefined();
  });

  it('a job with spec.workers acts as its own ServiceAccount, never as the operator: no ambient check', () => {
    const workers = { serviceAccountName: 's3-encryption-worker' };
    expect(checkTenancy(job('team-a', { workers }), policy())).toBeUndefined();
    expect(
      checkTenancy(job('team-a', { workers, connection: { roleArn: 'arn:aws:iam::1:role/x' } }), policy()),
    ).toBeUndefined();
    // The endpoint rules still hold: the pods would send signed requests from inside the cluster.
    expect(
      checkTenancy(job('team-a', { workers, connection: { endpoint: 'http://169.254.169.254/' } }), policy()),
    ).toMatchObject({ reason: 'EndpointNotAllowed' });
  });
});

describe('roleArn through the operator identity', () => {
  const role = 'arn:aws:iam::111122223333:role/encrypt-team-a';
  it('is refused unless the admin allowed that role for that namespace', () => {
    const p = policy({
      ambientNamespaces: ['team-a', 'team-b'],
      allowedRoles: parseRoleRules(`team-a=arn:aws:iam::111122223333:role/encrypt-team-a*`),
    });
    expect(checkTenancy(job('team-a', { connection: { roleArn: role } }), p)).toBeUndefined();
    expect(checkTenancy(job('team-b', { connection: { roleArn: role } }), p)).toMatchObject({
      reason: 'RoleNotAllowed',
    });
    expect(
      checkTenancy(job('team-a', { connection: { roleArn: 'arn:aws:iam::999999999999:role/x' } }), p),
    ).toMatchObject({ reason: 'RoleNotAllowed' });
    expect(checkTenancy(job(OPERATOR_NS, { connection: { roleArn: role } }), policy())).toMatchObject({
      reason: 'RoleNotAllowed',
    });
  });

  it("a role assumed with the job's own Secret is governed by its trust policy alone", () => {
    expect(checkTenancy(job('team-b', { connection: { ...secret, roleArn: role } }), policy())).toBeUndefined();
  });

  it('"*=pattern" grants every namespace; a malformed rule is a startup error', () => {
    const p = policy({
      ambientNamespaces: ['*'],
      allowedRoles: parseRoleRules('*=arn:aws:iam::111122223333:role/shared'),
    });
    expect(
      checkTenancy(job('x', { connection: { roleArn: 'arn:aws:iam::111122223333:role/shared' } }), p),
    ).toBeUndefined();
    expect(() => parseRoleRules('arn:aws:iam::1:role/x')).toThrow(/NAMESPACE=ROLE_ARN_PATTERN/);
    expect(parseRoleRules('a=x, b=y,')).toEqual([
      { namespace: 'a', pattern: 'x' },
      { namespace: 'b', pattern: 'y' },
    ]);
  });
});

describe('report destination', () => {
  const withReport = (destination: string, ns = 'team-a'): EncryptionJob =>
    job(ns, { connection: secret, report: { destination } });
  it("default: the job's own bucket under reports/", () => {
    expect(checkTenancy(withReport('s3://team-a-data/reports/run.csv'), policy())).toBeUndefined();
    expect(checkTenancy(withReport('s3://team-a-data/other/run.csv'), policy())).toMatchObject({
      reason: 'ReportDestinationNotAllowed',
    });
    expect(checkTenancy(withReport('s3://team-b-data/reports/run.csv'), policy())).toMatchObject({
      reason: 'ReportDestinationNotAllowed',
    });
  });
  it('the admin adds destinations and sets the prefix', () => {
    const p = policy({ reportDestinations: ['s3://audit-reports/*'], reportPrefix: '' });
    expect(checkTenancy(withReport('s3://audit-reports/team-a/x.jsonl'), p)).toBeUndefined();
    expect(checkTenancy(withReport('s3://team-a-data/anywhere.csv'), p)).toBeUndefined();
    expect(checkTenancy(withReport('s3://audit-reportsX/x'), p)).toMatchObject({
      reason: 'ReportDestinationNotAllowed',
    });
  });
});

describe('endpoints', () => {
  const at = (field: 'endpoint' | 'kmsEndpoint' | 'stsEndpoint', url: string): EncryptionJob =>
    job('team-a', { connection: { ...secret, [field]: url } });
  it('default: any host but link-local (metadata services)', () => {
    expect(checkTenancy(at('endpoint', 'https://minio.storage.svc:9000'), policy())).toBeUndefined();
    expect(checkTenancy(at('endpoint', 'http://169.254.169.254/latest'), policy())).toMatchObject({
      reason: 'EndpointNotAllowed',
    });
    expect(checkTenancy(at('stsEndpoint', 'http://[fd00:ec2::254]/'), policy())).toMatchObject({
      reason: 'EndpointNotAllowed',
    });
  });
  it('an allow-list of hosts, host:port and wildcards, for each of the three fields', () => {
    const p = policy({ endpointHosts: ['*.amazonaws.com', '127.0.0.1:8333'] });
    expect(checkTenancy(at('endpoint', 'https://s3.eu-west-1.amazonaws.com'), p)).toBeUndefined();
    expect(checkTenancy(at('endpoint', 'http://127.0.0.1:8333'), p)).toBeUndefined();
    expect(checkTenancy(at('endpoint', 'http://127.0.0.1:9999'), p)).toMatchObject({ reason: 'EndpointNotAllowed' });
    expect(checkTenancy(at('kmsEndpoint', 'http://kms.internal'), p)).toMatchObject({ reason: 'EndpointNotAllowed' });
    expect(checkTenancy(at('kmsEndpoint', 'http://kms.internal'), p)?.message).toContain('kmsEndpoint');
    expect(checkTenancy(at('stsEndpoint', 'http://evil.amazonaws.com.example'), p)).toMatchObject({
      reason: 'EndpointNotAllowed',
    });
  });
  it('is checked before the identity: a disallowed endpoint is refused even with a Secret', () => {
    expect(checkTenancy(at('endpoint', 'http://169.254.169.254'), policy({ ambientNamespaces: ['*'] }))?.reason).toBe(
      'EndpointNotAllowed',
    );
  });
});

describe('helpers', () => {
  it('globMatch anchors both ends and escapes regex characters', () => {
    expect(globMatch('s3://a.b/*', 's3://a.b/x/y')).toBe(true);
    expect(globMatch('s3://a.b/*', 's3://aXb/x')).toBe(false);
    expect(globMatch('arn:aws:iam::1:role/x', 'arn:aws:iam::1:role/xy')).toBe(false);
  });
  it('clip keeps endpoint text to one short line', () => {
    const body = `<Error><Code>X</Code><Message>${'a'.repeat(5000)}</Message>\n</Error>`;
    expect(clip(body).length).toBeLessThanOrEqual(500);
    expect(clip(body)).not.toContain('\n');
    expect(clip('short')).toBe('short');
  });
  it('report part and manifest keys keep the extension last', () => {
    expect(partKey('reports/run.csv', 3)).toBe('reports/run.part-0003.csv');
    expect(partKey('reports/run', 1)).toBe('reports/run.part-0001');
    expect(manifestKey('reports/run.csv', 12)).toBe('reports/run.manifest-0012.json');
  });
});
