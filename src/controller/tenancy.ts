// Who may act as whom: the cluster admin's tenancy policy, checked before a job
// makes any call. Creating an EncryptionJob must not be a way to borrow the
// operator's own cloud identity, assume a role, write a report over someone
// else's object or point signed requests at an internal service. The policy
// comes from operator flags (chart values) an admin owns, like the namespace
// selector of external-secrets' ClusterSecretStore; nothing in a job's spec
// can widen it. Pure: no I/O, so every rule is unit-tested without a server.
import { AddressGuard, type DeniedRange, type Resolver } from '../engine/s3/address-guard.js';
import type { EncryptionJob } from './api.js';

export interface TenancyPolicy {
  /** Namespaces whose jobs may use the operator's own identity (pod credential chain, IRSA). "*" = every namespace. */
  ambientNamespaces: string[];
  /** Roles a namespace may assume through the operator's identity: namespace ("*" = any) -> role ARN patterns ("*" wildcard). */
  allowedRoles: { namespace: string; pattern: string }[];
  /** Report destinations allowed besides the job's own bucket under reportPrefix: s3://BUCKET/PREFIX patterns ("*" wildcard). */
  reportDestinations: string[];
  /** Key prefix under which a job may always write its report into its own bucket ("" = anywhere in it). */
  reportPrefix: string;
  /** Hosts (host or host:port, "*" wildcard) that endpoint / kmsEndpoint / stsEndpoint may name. Empty = any host but a metadata service's (METADATA_RANGES). */
  endpointHosts: string[];
  /** Address ranges (CIDR) no endpoint may resolve to, besides METADATA_RANGES (e.g. the cluster's service CIDR). */
  deniedAddresses?: string[];
}

export function defaultPolicy(operatorNamespace: string): TenancyPolicy {
  return {
    ambientNamespaces: [operatorNamespace],
    allowedRoles: [],
    reportDestinations: [],
    reportPrefix: 'reports/',
    endpointHosts: [],
  };
}

export type TenancyReason =
  'IdentityNotAllowed' | 'RoleNotAllowed' | 'ReportDestinationNotAllowed' | 'EndpointNotAllowed';

export interface Refusal {
  reason: TenancyReason;
  message: string;
}

/** A glob where "*" matches any run of characters (also "/" and ":"), anchored at both ends. */
export function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  return re.test(value);
}

/** Comma or whitespace separated list from a flag ("" = empty list). */
export function splitList(value: string | undefined): string[] {
  return (value ?? '')
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** "ns=pattern" pairs of --allowed-role-arns. */
export function parseRoleRules(value: string | undefined): { namespace: string; pattern: string }[] {
  return splitList(value).map((entry) => {
    const i = entry.indexOf('=');
    if (i <= 0 || i === entry.length - 1)
      throw new Error(`--allowed-role-arns: "${entry}" is not NAMESPACE=ROLE_ARN_PATTERN`);
    return { namespace: entry.slice(0, i), pattern: entry.slice(i + 1) };
  });
}

/**
 * Addresses no job may send signed requests to: cloud metadata and credential
 * services. Judged on the address (address-guard.ts), whatever the endpoint's
 * spelling or the name that resolves to it, unless the admin names the host in
 * --allowed-endpoint-hosts. Loopback and private ranges stay allowed: in-cluster
 * S3-compatible storage lives there.
 */
export const METADATA_RANGES: readonly DeniedRange[] = [
  {
    range: '169.254.0.0/16',
    why: 'link-local: cloud metadata and credential services (169.254.169.254, ECS 169.254.170.2, EKS 169.254.170.23)',
  },
  { range: 'fe80::/10', why: 'IPv6 link-local' },
  { range: 'fd00:ec2::/64', why: "AWS's IPv6 metadata and credential services (fd00:ec2::254, fd00:ec2::23)" },
  { range: '100.100.100.200', why: 'the Alibaba Cloud metadata service' },
  { range: '168.63.129.16', why: 'the Azure host service (WireServer)' },
];

/** Names of metadata services, refused before they are resolved (they resolve to a range above in their cloud). */
const METADATA_NAMES = new Set(['metadata.google.internal', 'metadata.goog', 'instance-data.ec2.internal']);

/** The host of an --allowed-endpoint-hosts pattern ("host:port" -> "host", "[v6]:port" -> "[v6]"). */
function patternHost(pattern: string): string {
  const p = pattern.toLowerCase();
  if (p.startsWith('[')) return p.slice(0, p.indexOf(']') + 1) || p;
  return p.split(':').length === 2 ? (p.split(':')[0] ?? p) : p;
}

/** Whether the admin named this host itself (a wildcard pattern is not a name: "*" must not open the metadata service). */
function namedHost(policy: TenancyPolicy, host: string): boolean {
  return policy.endpointHosts.some((p) => !p.includes('*') && patternHost(p) === host.toLowerCase());
}

/**
 * The address guard of every client the operator makes: the metadata ranges are
 * never connected to, unless the host was named by the admin. `resolve` is for tests.
 */
export function addressGuardFor(policy: TenancyPolicy, resolve?: Resolver): AddressGuard {
  return new AddressGuard({
    deny: [
      ...METADATA_RANGES,
      ...(policy.deniedAddresses ?? []).map((range) => ({
        range,
        why: "in the operator's denied endpoint addresses (--denied-endpoint-addresses)",
      })),
    ],
    allowHost: (host) => namedHost(policy, host),
    advice: 'name the host in --allowed-endpoint-hosts to allow it',
    ...(resolve ? { resolve } : {}),
  });
}

function checkEndpoint(field: string, url: string | undefined, policy: TenancyPolicy): Refusal | undefined {
  if (url === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { reason: 'EndpointNotAllowed', message: `spec.connection.${field} "${url}" is not a URL` };
  }
  const host = parsed.hostname.toLowerCase();
  const hostPort = parsed.port ? `${host}:${parsed.port}` : host;
  const listed = policy.endpointHosts.some(
    (p) => globMatch(p.toLowerCase(), hostPort) || globMatch(p.toLowerCase(), host),
  );
  if (policy.endpointHosts.length > 0 && !listed) {
    return {
      reason: 'EndpointNotAllowed',
      message: `spec.connection.${field} host "${hostPort}" is not in the operator's allowed endpoint hosts (--allowed-endpoint-hosts)`,
    };
  }
  if (namedHost(policy, host)) return undefined;
  // Cloud metadata services: never a place to send signed requests, unless named explicitly.
  // A name is judged again on its addresses when the operator connects (address-guard.ts).
  const why = METADATA_NAMES.has(host.replace(/\.$/, ''))
    ? 'a cloud metadata service'
    : addressGuardFor(policy).hostRefusal(host);
  if (why) {
    return {
      reason: 'EndpointNotAllowed',
      message: `spec.connection.${field} host "${hostPort}" is not allowed: ${why}; name it in --allowed-endpoint-hosts to allow it`,
    };
  }
  return undefined;
}

function checkReport(job: EncryptionJob, policy: TenancyPolicy): Refusal | undefined {
  const destination = job.spec.report?.destination;
  if (destination === undefined) return undefined;
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(destination);
  if (!m)
    return {
      reason: 'ReportDestinationNotAllowed',
      message: `spec.report.destination "${destination}" is not s3://BUCKET/KEY`,
    };
  const [, bucket = '', key = ''] = m;
  if (bucket === job.spec.bucket && key.startsWith(policy.reportPrefix)) return undefined;
  if (policy.reportDestinations.some((p) => globMatch(p, destination))) return undefined;
  return {
    reason: 'ReportDestinationNotAllowed',
    message: `spec.report.destination "${destination}" is neither under s3://${job.spec.bucket}/${policy.reportPrefix} (the job's own bucket) nor in the operator's allowed report destinations (--allowed-report-destinations)`,
  };
}

/**
 * Undefined when the job may run as written, else why not. A job that names no
 * Secret of its own namespace would act as the operator: that is the admin's to allow.
 */
export function checkTenancy(job: EncryptionJob, policy: TenancyPolicy): Refusal | undefined {
  const ns = job.metadata?.namespace ?? '';
  const conn = job.spec.connection ?? {};
  for (const field of ['endpoint', 'kmsEndpoint', 'stsEndpoint'] as const) {
    const refused = checkEndpoint(field, conn[field], policy);
    if (refused) return refused;
  }
  // With spec.workers the pods act as the job's own ServiceAccount (checked in workerrun.ts), never as the operator.
  const ambient = !conn.credentialsSecretRef && !job.spec.workers;
  if (ambient) {
    const allowed = policy.ambientNamespaces.some((n) => n === '*' || n === ns);
    if (!allowed) {
      return {
        reason: 'IdentityNotAllowed',
        message: `namespace "${ns}" may not use the operator's own identity: name a Secret of this namespace in spec.connection.credentialsSecretRef, or ask the cluster admin to add "${ns}" to --ambient-identity-namespaces`,
      };
    }
    // A role assumed with the operator's identity is the admin's to grant; one assumed with
    // the job's own credentials is governed by the role's trust policy alone.
    if (conn.roleArn !== undefined) {
      const roleAllowed = policy.allowedRoles.some(
        (r) => (r.namespace === '*' || r.namespace === ns) && globMatch(r.pattern, conn.roleArn ?? ''),
      );
      if (!roleAllowed) {
        return {
          reason: 'RoleNotAllowed',
          message: `namespace "${ns}" may not assume role "${conn.roleArn}" through the operator's identity (--allowed-role-arns)`,
        };
      }
    }
  }
  return checkReport(job, policy);
}

/** Endpoint text copied into status or events: one line, at most `max` characters. */
export function clip(text: string, max = 500): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
