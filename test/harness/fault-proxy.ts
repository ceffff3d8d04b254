// A fault-injecting HTTP proxy on loopback, between a client (the engine, or
// SeaweedFS talking to its KMS) and a real server. It forwards every request
// unchanged, the Host header included: the client signs for the proxy's
// host:port and SeaweedFS / local-kms check the signature against the Host
// header they receive, so SigV4 stays valid without re-signing.
//
// Faults are decided per request from a seeded hash of (seed, operation, key,
// attempt), not from the arrival order, so a drill injects the same faults on
// the same requests however the requests interleave; a retry (next attempt)
// draws again. Every request is recorded (operation, key, the SDK's invocation
// id and attempt, the fault, the upstream status) so a drill can check what
// reached the server.
import { createHash } from 'node:crypto';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';

export type Fault =
  | 'none'
  /** 500 InternalError without forwarding. */
  | 'error500'
  /** S3: 503 Slow Down (SlowDown body; a HEAD gets the status line only, as from S3); KMS: 400 ThrottlingException. Not forwarded. */
  | 'throttle'
  /** Forwarded; the server's answer is cut after the headers and half the body, then RST. */
  | 'resetMidResponse'
  /** RST before forwarding: the server never sees the request. */
  | 'resetBeforeForward'
  /** Forwarded after a pause of latencyMs. */
  | 'latency'
  /** Decided by the rule set with setRule (an error answer, or a delay). */
  | 'rule';

export interface FaultRates {
  /** Probabilities per request, each in [0, 1]; their sum must stay <= 1. */
  error500: number;
  throttle: number;
  resetMidResponse: number;
  resetBeforeForward: number;
  latency: number;
  /** Pause of a latency fault: uniform in [min, max] ms. */
  latencyMs: [number, number];
  /** Only these operations get faults (undefined: all). */
  operations?: string[];
}

export const NO_FAULTS: FaultRates = {
  error500: 0,
  throttle: 0,
  resetMidResponse: 0,
  resetBeforeForward: 0,
  latency: 0,
  latencyMs: [0, 0],
};

export interface ProxiedRequest {
  /** ms since the proxy started, when the request arrived. */
  at: number;
  /** ms since the proxy started, when it was answered (or cut). */
  doneAt?: number;
  method: string;
  operation: string;
  bucket?: string;
  key?: string;
  /** amz-sdk-invocation-id: the same for every retry of one SDK call. */
  invocationId?: string;
  /** The uploadId query parameter (multipart parts, Complete, Abort). */
  uploadId?: string;
  /** From amz-sdk-request: attempt=N; max=M. */
  attempt: number;
  fault: Fault | 'blackout';
  /** Status the server answered (forwarded requests only). */
  upstreamStatus?: number;
  /** Status the client got; undefined when the connection was cut. */
  status?: number;
}

export interface FaultProxyOptions {
  /** http://127.0.0.1:PORT of the real server. */
  target: string;
  /** 's3': S3 XML errors and S3 operation names; 'kms': JSON errors, X-Amz-Target names. */
  protocol: 's3' | 'kms';
  seed: number;
  rates?: Partial<FaultRates>;
}

export interface Blackout {
  /**
   * 'drop': requests are swallowed (no answer, nothing forwarded) until the window
   * ends; then they are forwarded late, as TCP retransmissions would deliver them.
   * 'refuse': connections are reset at once (a server that is down).
   */
  mode: 'drop' | 'refuse';
  ms: number;
}

/**
 * A scripted step on matching requests, for races and answers a real server
 * cannot be made to give: `before` runs just before the request is forwarded
 * (another client's write landing exactly between two of ours), `answer`
 * replies instead of the server, `editHeaders` changes the server's answer.
 */
export interface RequestHook {
  match: (r: ProxiedRequest, headers: IncomingHttpHeaders) => boolean;
  before?: (r: ProxiedRequest) => Promise<void>;
  answer?: (r: ProxiedRequest) => { status: number; headers?: Record<string, string>; body?: string };
  editHeaders?: (headers: Record<string, string | string[]>, r: ProxiedRequest) => void;
  /** How many requests it applies to (default: all that match). */
  times?: number;
}

/**
 * What a rule makes of one request: an S3 error answered without forwarding;
 * forwarding after a delay, or once `hold` settles (a slow object for as long as
 * the test wants); or forwarding with the server's answer body rewritten (a
 * server bug). Rules pick requests by what they are (operation, key), so a test
 * says "this key always answers 503" instead of a probability.
 */
export type RuleAnswer =
  /** An S3 error, answered once `hold` (if any) settles: an error at the moment the test chooses. */
  | { status: number; code: string; message?: string; hold?: Promise<unknown> }
  | { delayMs: number }
  | { hold: Promise<unknown> }
  | { rewriteBody: (body: string) => string };
export type Rule = (r: ProxiedRequest) => RuleAnswer | undefined;

export interface FaultProxy {
  /** http://127.0.0.1:PORT: the endpoint clients use. */
  url: string;
  readonly requests: readonly ProxiedRequest[];
  setRates(rates: Partial<FaultRates>): void;
  /** Adds a hook; returns a function that removes it. */
  hook(h: RequestHook): () => void;
  /** Sets (or with undefined, removes) the rule; it is asked before the random faults. */
  setRule(rule: Rule | undefined): void;
  /** Starts a blackout now; resolves when it is over. */
  blackout(b: Blackout): Promise<void>;
  /** Starts a blackout when the first request matching `when` arrives (that request is its first victim); resolves when it is over. */
  blackoutOn(b: Blackout, when: (r: ProxiedRequest) => boolean): Promise<void>;
  /** Requests per second that arrived in [fromMs, toMs) (proxy clock). */
  rate(fromMs: number, toMs: number, filter?: (r: ProxiedRequest) => boolean): number;
  now(): number;
  stop(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
]);

/** Deterministic uniform [0, 1) from a string. */
function unit(seed: number, text: string): number {
  const h = createHash('sha256').update(`${seed}\0${text}`).digest();
  return h.readUInt32BE(0) / 0x1_0000_0000;
}

function s3Operation(
  method: string,
  path: string,
  query: URLSearchParams,
  headers: IncomingHttpHeaders,
): { operation: string; bucket?: string; key?: string } {
  const segments = path.replace(/^\//, '').split('/');
  const bucket = segments[0] ? decodeURIComponent(segments[0]) : undefined;
  const rawKey = segments.slice(1).join('/');
  const key = rawKey ? decodeURIComponent(rawKey) : undefined;
  const copy = headers['x-amz-copy-source'] !== undefined;
  let operation: string;
  if (!bucket) operation = 'ListBuckets';
  else if (key === undefined) {
    if (query.has('versioning')) operation = 'GetBucketVersioning';
    else if (query.has('ownershipControls')) operation = 'GetBucketOwnershipControls';
    else if (query.has('versions')) operation = 'ListObjectVersions';
    else if (query.has('object-lock'))
      operation = method === 'GET' ? 'GetObjectLockConfiguration' : `${method}ObjectLockConfiguration`;
    else if (method === 'HEAD') operation = 'HeadBucket';
    else if (method === 'GET') operation = query.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects';
    else operation = `${method}Bucket`;
  } else if (query.has('uploads')) operation = 'CreateMultipartUpload';
  else if (query.has('uploadId')) {
    if (method === 'PUT') operation = copy ? 'UploadPartCopy' : 'UploadPart';
    else if (method === 'POST') operation = 'CompleteMultipartUpload';
    else if (method === 'DELETE') operation = 'AbortMultipartUpload';
    else operation = 'ListParts';
  } else if (query.has('retention')) operation = method === 'GET' ? 'GetObjectRetention' : `${method}ObjectRetention`;
  else if (query.has('legal-hold')) operation = method === 'GET' ? 'GetObjectLegalHold' : `${method}ObjectLegalHold`;
  else if (query.has('encryption') && method === 'PUT') operation = 'UpdateObjectEncryption';
  else if (query.has('tagging')) operation = method === 'GET' ? 'GetObjectTagging' : `${method}ObjectTagging`;
  else if (query.has('acl')) operation = method === 'GET' ? 'GetObjectAcl' : `${method}ObjectAcl`;
  else if (method === 'HEAD') operation = 'HeadObject';
  else if (method === 'GET') operation = 'GetObject';
  else if (method === 'PUT') operation = copy ? 'CopyObject' : 'PutObject';
  else if (method === 'DELETE') operation = 'DeleteObject';
  else operation = `${method}Object`;
  return { operation, ...(bucket ? { bucket } : {}), ...(key !== undefined ? { key } : {}) };
}

/**
 * S3 answers a throttled request with `503 Slow Down` and a SlowDown error body.
 * A HEAD answer has no body, and S3 sends no error code in a header either: the
 * client sees only the status line (the AWS SDKs name it by status, not as
 * SlowDown; see aws/aws-sdk-java-v2#5414). The proxy answers the same way.
 */
function errorResponse(
  protocol: 's3' | 'kms',
  kind: 'error500' | 'throttle',
  requestId: string,
): { status: number; statusMessage?: string; headers: Record<string, string>; body: string } {
  if (protocol === 'kms') {
    const throttle = kind === 'throttle';
    return {
      status: throttle ? 400 : 500,
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': requestId },
      body: JSON.stringify(
        throttle
          ? { __type: 'ThrottlingException', message: 'Rate exceeded' }
          : { __type: 'KMSInternalException', message: 'injected internal error' },
      ),
    };
  }
  const [status, code, message] =
    kind === 'throttle'
      ? [503, 'SlowDown', 'Please reduce your request rate.']
      : [500, 'InternalError', 'We encountered an internal error. Please try again.'];
  return {
    status,
    ...(kind === 'throttle' ? { statusMessage: 'Slow Down' } : {}),
    headers: { 'content-type': 'application/xml', 'x-amz-request-id': requestId },
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>${requestId}</RequestId></Error>`,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function reset(socket: Socket | null | undefined): void {
  if (!socket || socket.destroyed) return;
  socket.resetAndDestroy();
}

export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(opts.target);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const started = performance.now();
  const now = (): number => performance.now() - started;
  const requests: ProxiedRequest[] = [];
  let rates: FaultRates = { ...NO_FAULTS, ...opts.rates };
  let blackout: (Blackout & { until: number; over: Promise<void> }) | undefined;
  const sockets = new Set<Socket>();
  let counter = 0;
  const seen = new Map<string, number>();
  let trigger: { when: (r: ProxiedRequest) => boolean; start: () => void } | undefined;
  const hooks: { h: RequestHook; left: number }[] = [];
  let rule: Rule | undefined;

  const choose = (record: ProxiedRequest, identity: string): Fault => {
    if (rates.operations && !rates.operations.includes(record.operation)) return 'none';
    const u = unit(opts.seed, identity);
    let edge = 0;
    for (const fault of ['error500', 'throttle', 'resetMidResponse', 'resetBeforeForward', 'latency'] as const) {
      edge += rates[fault];
      if (u < edge) return fault;
    }
    return 'none';
  };

  const forward = (
    req: IncomingMessage,
    body: Buffer,
  ): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
      if (body.length > 0 || req.headers['content-length'] !== undefined)
        headers['content-length'] = String(body.length);
      const up = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        },
      );
      up.on('error', reject);
      up.end(body);
    });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const attemptHeader = /attempt=(\d+)/.exec(String(req.headers['amz-sdk-request'] ?? ''));
    const invocation = req.headers['amz-sdk-invocation-id'];
    const target = String(req.headers['x-amz-target'] ?? '');
    const classified =
      opts.protocol === 'kms'
        ? { operation: target.replace(/^TrentService\./, '') || 'Unknown' }
        : s3Operation(req.method ?? 'GET', url.pathname, url.searchParams, req.headers);
    const record: ProxiedRequest = {
      at: now(),
      method: req.method ?? 'GET',
      ...classified,
      ...(typeof invocation === 'string' ? { invocationId: invocation } : {}),
      ...(url.searchParams.get('uploadId') ? { uploadId: url.searchParams.get('uploadId') ?? '' } : {}),
      attempt: attemptHeader ? Number(attemptHeader[1]) : 1,
      fault: 'none',
    };
    requests.push(record);
    if (trigger?.when(record)) {
      const t = trigger;
      trigger = undefined;
      t.start();
    }
    const body = await readBody(req);
    const done = (status?: number): void => {
      record.doneAt = now();
      if (status !== undefined) record.status = status;
    };
    const hooked = hooks.find((x) => x.left > 0 && x.h.match(record, req.headers));
    if (hooked) hooked.left--;
    const hook = hooked?.h;
    if (hook?.before) await hook.before(record);
    const scripted = hook?.answer?.(record);
    if (scripted) {
      const text = req.method === 'HEAD' ? '' : (scripted.body ?? '');
      res.writeHead(scripted.status, { ...scripted.headers, 'content-length': String(Buffer.byteLength(text)) });
      res.end(text || undefined);
      done(scripted.status);
      return;
    }

    if (blackout && now() < blackout.until) {
      record.fault = 'blackout';
      if (blackout.mode === 'refuse') {
        reset(req.socket);
        done();
        return;
      }
      // Dropped packets: nothing reaches the server until the network is back;
      // then TCP's retransmission delivers the request (a few seconds late).
      await blackout.over;
      await sleep(500 + unit(opts.seed, `retransmit ${counter}`) * 1500);
    }

    // Identity of the request: the same request sent again (the engine looking at an
    // object a second time) draws anew through its occurrence number.
    const base = `${record.operation} ${record.bucket ?? ''}/${record.key ?? ''}${url.search} #${record.attempt}`;
    const occurrence = (seen.get(base) ?? 0) + 1;
    seen.set(base, occurrence);
    const identity = `${base} (${occurrence})`;
    const ruled = record.fault === 'blackout' ? undefined : rule?.(record);
    const fault = record.fault === 'blackout' ? 'none' : ruled ? 'rule' : choose(record, identity);
    if (record.fault !== 'blackout') record.fault = fault;
    const requestId = `FAULTPROXY${(counter++).toString(16).padStart(8, '0')}`;

    if (ruled && 'code' in ruled) {
      if (ruled.hold) await ruled.hold.catch(() => undefined);
      const body =
        opts.protocol === 'kms'
          ? JSON.stringify({ __type: ruled.code, message: ruled.message ?? ruled.code })
          : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${ruled.code}</Code><Message>${ruled.message ?? ruled.code}</Message><RequestId>${requestId}</RequestId></Error>`;
      const type = opts.protocol === 'kms' ? 'application/x-amz-json-1.1' : 'application/xml';
      res.writeHead(ruled.status, {
        'content-type': type,
        'x-amz-request-id': requestId,
        'content-length': String(Buffer.byteLength(body)),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      done(ruled.status);
      return;
    }
    if (ruled && ('delayMs' in ruled || 'hold' in ruled)) {
      await ('hold' in ruled ? ruled.hold.catch(() => undefined) : sleep(ruled.delayMs));
      // A client that gave up (or was killed) meanwhile: its request is not delivered late.
      if (req.socket.destroyed) {
        done();
        return;
      }
    }

    if (fault === 'error500' || fault === 'throttle') {
      const e = errorResponse(opts.protocol, fault, requestId);
      const headers = { ...e.headers, 'content-length': String(Buffer.byteLength(e.body)) };
      if (e.statusMessage) res.writeHead(e.status, e.statusMessage, headers);
      else res.writeHead(e.status, headers);
      res.end(req.method === 'HEAD' ? undefined : e.body);
      done(e.status);
      return;
    }
    if (fault === 'resetBeforeForward') {
      reset(req.socket);
      done();
      return;
    }
    if (fault === 'latency') {
      const [min, max] = rates.latencyMs;
      await sleep(min + unit(opts.seed, `latency ${identity}`) * (max - min));
    }
    let answer;
    try {
      answer = await forward(req, body);
    } catch {
      reset(req.socket);
      done();
      return;
    }
    record.upstreamStatus = answer.status;
    if (ruled && 'rewriteBody' in ruled) answer.body = Buffer.from(ruled.rewriteBody(answer.body.toString('utf8')));
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(answer.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
    const isHead = req.method === 'HEAD';
    if (!isHead) headers['content-length'] = String(answer.body.length);
    hook?.editHeaders?.(headers, record);
    if (fault === 'resetMidResponse') {
      // The server did the work; the client sees its connection die mid-answer.
      res.writeHead(answer.status, headers);
      const half = isHead ? Buffer.alloc(0) : answer.body.subarray(0, Math.floor(answer.body.length / 2));
      if (isHead) {
        // A HEAD answer has no body to cut: cut before the headers instead.
        reset(req.socket);
      } else {
        res.write(half, () => reset(req.socket));
      }
      done();
      return;
    }
    res.writeHead(answer.status, headers);
    res.end(isHead ? undefined : answer.body);
    done(answer.status);
  };

  async function startBlackout(b: Blackout): Promise<void> {
    let release = (): void => undefined;
    const over = new Promise<void>((r) => (release = r));
    blackout = { ...b, until: now() + b.ms, over };
    if (b.mode === 'refuse') for (const s of sockets) reset(s);
    await sleep(b.ms);
    blackout = undefined;
    release();
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => reset(req.socket));
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fault proxy: no port');

  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    setRates(r) {
      rates = { ...rates, ...r };
    },
    hook(h) {
      const entry = { h, left: h.times ?? Number.POSITIVE_INFINITY };
      hooks.push(entry);
      return () => {
        const i = hooks.indexOf(entry);
        if (i >= 0) hooks.splice(i, 1);
      };
    },
    setRule(r) {
      rule = r;
    },
    blackout: startBlackout,
    blackoutOn(b, when) {
      return new Promise<void>((resolve) => {
        trigger = { when, start: () => void startBlackout(b).then(resolve) };
      });
    },
    rate(fromMs, toMs, filter) {
      const n = requests.filter((r) => r.at >= fromMs && r.at < toMs && (!filter || filter(r))).length;
      return n / Math.max((toMs - fromMs) / 1000, 0.001);
    },
    now,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
