// Building the S3 and KMS clients of one run from its connection settings.
// Throttling is handled by the SDK's adaptive retry mode: a client-side token
// bucket that shrinks multiplicatively on SlowDown / ThrottlingException and
// grows back gradually, plus jittered exponential backoff for retryable errors.
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { processAddressGuard, type AddressGuard } from './address-guard.js';
import { LeanS3 } from './lean.js';
import { TokenBucket } from './ratelimit.js';
import type { Connection } from '../types.js';

export interface RequestEvent {
  service: 's3' | 'kms';
  operation: string;
  seconds: number;
  /** Error code, when the request (after the SDK's retries) failed. */
  error?: string;
  /** Retries the SDK made for this request, throttling included. */
  attempts: number;
  throttled: boolean;
}

export type RequestObserver = (event: RequestEvent) => void;

const THROTTLE_CODES = new Set([
  'SlowDown',
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'ServiceUnavailable',
]);

export function isThrottle(code: string | undefined): boolean {
  return code !== undefined && THROTTLE_CODES.has(code);
}

interface Observable {
  middlewareStack: {
    add: (
      mw: (next: (args: unknown) => Promise<unknown>, ctx: ObservedContext) => (args: unknown) => Promise<unknown>,
      opts: { step: 'initialize' | 'build' | 'deserialize'; name: string; priority?: 'high' },
    ) => void;
  };
}

/** The SDK's per-command context, shared by every attempt of one request. */
interface ObservedContext {
  commandName?: string;
  s3eoThrottles?: number;
}

function errorCodeOf(err: unknown): string | undefined {
  const e = err as { name?: string; Code?: string } | undefined;
  return e?.Code ?? e?.name;
}

function observe(client: Observable, service: 's3' | 'kms', observer: RequestObserver | undefined): void {
  if (!observer) return;
  // Below the retry middleware: sees every attempt, so a throttled attempt that a
  // retry then got through is still counted (and a retried 500 is not a throttle).
  client.middlewareStack.add(
    (next, ctx) => async (args) => {
      try {
        return await next(args);
      } catch (err) {
        if (isThrottle(errorCodeOf(err))) ctx.s3eoThrottles = (ctx.s3eoThrottles ?? 0) + 1;
        throw err;
      }
    },
    // High priority: outside the SDK's deserializer, so next() throws the parsed error.
    { step: 'deserialize', name: 's3eoThrottleCounter', priority: 'high' },
  );
  client.middlewareStack.add(
    (next, ctx) => async (args) => {
      const started = performance.now();
      const operation = (ctx.commandName ?? 'Unknown').replace(/Command$/, '');
      try {
        const out = (await next(args)) as { output?: { $metadata?: { attempts?: number } } };
        const attempts = out.output?.$metadata?.attempts ?? 1;
        observer({
          service,
          operation,
          seconds: (performance.now() - started) / 1000,
          attempts,
          throttled: (ctx.s3eoThrottles ?? 0) > 0,
        });
        return out;
      } catch (err) {
        const code = errorCodeOf(err);
        observer({
          service,
          operation,
          seconds: (performance.now() - started) / 1000,
          error: code ?? 'Unknown',
          attempts: (err as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1,
          throttled: (ctx.s3eoThrottles ?? 0) > 0 || isThrottle(code),
        });
        throw err;
      }
    },
    { step: 'initialize', name: 's3eoRequestObserver' },
  );
}

export interface Clients {
  s3: S3Client;
  kms: KMSClient;
  destroy(): void;
}

export interface ClientOptions {
  observer?: RequestObserver;
  /** Attempts per request, the first included (the SDK retries with jittered backoff). */
  maxAttempts?: number;
  /** Cap on S3 requests per second for the whole run. */
  maxRequestsPerSecond?: number;
  /** Objects in flight: the connection pool is sized for them. */
  concurrency?: number;
  /** Addresses no connection may go to (default: the process's, see setProcessAddressGuard). */
  addressGuard?: AddressGuard;
}

/**
 * Keep-alive sockets for every object in flight (plus headroom for the lister
 * and bookkeeping), so that no request waits in the agent's queue or pays a new
 * TCP/TLS handshake. The SDK's own default pool is 50 sockets.
 */
export function socketsFor(concurrency: number | undefined): number {
  return Math.max(50, (concurrency ?? 32) + 16);
}

/** The lean HeadObject/CopyObject path that belongs to an S3 client made by createClients. */
const leanPaths = new WeakMap<S3Client, LeanS3>();

export function leanOf(s3: S3Client): LeanS3 | undefined {
  return leanPaths.get(s3);
}

function limit(client: Observable, bucket: TokenBucket): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      await bucket.take();
      return next(args);
    },
    { step: 'initialize', name: 's3eoRateLimit' },
  );
}

interface Trimmable {
  middlewareStack: Observable['middlewareStack'] & { remove: (name: string) => boolean };
}

/** One fixed User-Agent instead of the SDK's, which is rebuilt and escaped on every request. */
const USER_AGENT = 's3-encryption-operator';

/**
 * Drops per-request SDK work that this engine does not need (bench/PROFILE.md):
 * the user agent built and escaped for every request, the Lambda recursion
 * detection header, and the logger middleware (no SDK logger is configured).
 */
function trim(client: Trimmable): void {
  for (const name of ['getUserAgentMiddleware', 'recursionDetectionMiddleware', 'loggerMiddleware'])
    client.middlewareStack.remove(name);
  client.middlewareStack.add(
    (next) => (args) => {
      const request = (args as { request?: { headers?: Record<string, string> } }).request;
      if (request?.headers) request.headers['user-agent'] = USER_AGENT;
      return next(args);
    },
    { step: 'build', name: 's3eoUserAgent' },
  );
}

/** SDK attempts per request (the first included) unless a caller says otherwise. */
export const DEFAULT_MAX_ATTEMPTS = 8;

/** Without timeouts a connection that dies silently holds a worker forever. */
const CONNECTION_TIMEOUT_MS = 5_000;
/** Socket inactivity, not the whole request: a long copy that S3 keeps alive is fine. */
const REQUEST_TIMEOUT_MS = 120_000;

interface Agents {
  httpAgent: HttpAgent;
  httpsAgent: HttpsAgent;
}

/** One pool per client: destroying one client must not close another's sockets. Every socket passes the guard. */
function agentsFor(maxSockets: number, guard: AddressGuard | undefined): Agents {
  const httpAgent = new HttpAgent({ keepAlive: true, maxSockets });
  const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets });
  return guard
    ? { httpAgent: guard.protect(httpAgent), httpsAgent: guard.protect(httpsAgent) }
    : { httpAgent, httpsAgent };
}

function handlerFor(agents: Agents): NodeHttpHandler {
  return new NodeHttpHandler({
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    ...agents,
  });
}

/** The connection's credentials, or a role assumed with them (its STS requests pass the same guard). */
function credentialsFor(conn: Connection, region: string, sts: () => NodeHttpHandler) {
  if (!conn.roleArn) return conn.credentials;
  return fromTemporaryCredentials({
    params: {
      RoleArn: conn.roleArn,
      RoleSessionName: 's3-encryption-operator',
      ...(conn.externalId ? { ExternalId: conn.externalId } : {}),
    },
    ...(conn.credentials ? { masterCredentials: conn.credentials } : {}),
    clientConfig: { region, requestHandler: sts(), ...(conn.stsEndpoint ? { endpoint: conn.stsEndpoint } : {}) },
  });
}

/** The lean HEAD/CopyObject path of an S3 client: its pool, limits and observer. */
function leanFor(
  s3: S3Client,
  agents: Agents,
  maxAttempts: number,
  bucket: TokenBucket | undefined,
  observer?: RequestObserver,
): LeanS3 {
  return new LeanS3(s3, {
    ...agents,
    connectionTimeoutMs: CONNECTION_TIMEOUT_MS,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    maxAttempts,
    ...(bucket ? { beforeRequest: () => bucket.take() } : {}),
    // The same throttling codes as the SDK requests' observer.
    countsAsThrottle: (err) => isThrottle(errorCodeOf(err)),
    ...(observer
      ? {
          observe: (operation, seconds, attempts, throttles, error) =>
            observer({
              service: 's3',
              operation,
              seconds,
              attempts,
              throttled: throttles > 0,
              ...(error !== undefined ? { error: errorCodeOf(error) ?? 'Unknown' } : {}),
            }),
        }
      : {}),
  });
}

export function createClients(conn: Connection, opts: ClientOptions = {}): Clients {
  const { observer, maxAttempts = DEFAULT_MAX_ATTEMPTS, maxRequestsPerSecond, concurrency } = opts;
  const guard = opts.addressGuard ?? processAddressGuard();
  const region = conn.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const maxSockets = socketsFor(concurrency);
  const credentials = credentialsFor(conn, region, () => handlerFor(agentsFor(maxSockets, guard)));
  const common = { region, retryMode: 'adaptive', maxAttempts, ...(credentials ? { credentials } : {}) };
  // The S3 pool is shared by the SDK's requests and the lean ones.
  const s3Agents = agentsFor(maxSockets, guard);
  const s3 = new S3Client({
    ...common,
    requestHandler: handlerFor(s3Agents),
    ...(conn.endpoint ? { endpoint: conn.endpoint } : {}),
    forcePathStyle: conn.forcePathStyle ?? Boolean(conn.endpoint),
    // Checksums on every request would be computed over copy requests with no body;
    // only send them where S3 requires them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const kms = new KMSClient({
    ...common,
    requestHandler: handlerFor(agentsFor(maxSockets, guard)),
    ...(conn.kmsEndpoint ? { endpoint: conn.kmsEndpoint } : {}),
  });
  for (const [client, service] of [
    [s3, 's3'],
    [kms, 'kms'],
  ] as const) {
    trim(client as unknown as Trimmable);
    observe(client as unknown as Observable, service, observer);
  }
  const bucket = maxRequestsPerSecond && maxRequestsPerSecond > 0 ? new TokenBucket(maxRequestsPerSecond) : undefined;
  if (bucket) limit(s3 as unknown as Observable, bucket);
  leanPaths.set(s3, leanFor(s3, s3Agents, maxAttempts, bucket, observer));
  return {
    s3,
    kms,
    destroy() {
      s3.destroy();
      kms.destroy();
    },
  };
}
