// A plain-HTTP proxy on loopback in front of the test kube-apiserver, for ONE
// operator process: it gets a kubeconfig that points here (same bearer token),
// and the proxy forwards every request over TLS to the real apiserver. Because
// it sees the API calls in clear, a test can act on exactly the calls it means:
// freeze the Lease renewals of one replica (a partition that RSTs nothing),
// hold the responses to status writes, delay the watch stream (a lagging
// informer cache), or refuse everything (an unreachable apiserver). Every
// request is recorded with its arrival and answer times, so a test can count
// the writes each operator made and when.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';

export interface KubeRequest {
  /** Date.now() when the request arrived. */
  at: number;
  /** Date.now() when the response headers were sent (undefined: never answered). */
  answeredAt?: number;
  method: string;
  path: string;
  status?: number;
  /** Held by a freeze: never forwarded. */
  frozen?: boolean;
  /** The request body of a write (PATCH, POST, PUT), once it has arrived. */
  body?: string;
}

export type RequestMatch = (method: string, path: string) => boolean;

export interface KubeProxy {
  url: string;
  /** A kubeconfig with the same identity as the one given, pointing at this proxy. */
  kubeconfig: string;
  requests: KubeRequest[];
  /** Requests that match are held forever (not forwarded, not answered) until unfreeze(). */
  freeze(match: RequestMatch): void;
  unfreeze(): void;
  /** Responses of matching requests are held this long after the apiserver answered. */
  delayResponses(match: RequestMatch, ms: number): void;
  /** Every chunk of a watch stream reaches the client this much later (order kept). */
  delayWatch(ms: number): void;
  /** Cut every connection and refuse new ones (true), or accept again (false). */
  refuse(on: boolean): void;
  /** Cut the open connections, then answer every watch request with this status, not forwarded (lists still work); undefined: forward again. */
  failWatches(status: number | undefined): void;
  close(): Promise<void>;
}

interface KubeconfigFile {
  clusters: { name: string; cluster: { server: string; 'certificate-authority-data'?: string } }[];
  users: { name: string; user: { token?: string } }[];
}

export async function startKubeProxy(opts: { kubeconfig: string; dir: string }): Promise<KubeProxy> {
  const config = parse(readFileSync(opts.kubeconfig, 'utf8')) as KubeconfigFile;
  const cluster = config.clusters[0]!.cluster;
  const upstream = new URL(cluster.server);
  const ca = cluster['certificate-authority-data']
    ? Buffer.from(cluster['certificate-authority-data'], 'base64')
    : undefined;
  const agent = new Agent({ keepAlive: true, ...(ca ? { ca } : {}) });

  const requests: KubeRequest[] = [];
  let freezeMatch: RequestMatch | undefined;
  const frozen = new Set<ServerResponse>();
  const delays: { match: RequestMatch; ms: number }[] = [];
  let watchDelay = 0;
  let refusing = false;
  let watchFailure: number | undefined;
  const sockets = new Set<Socket>();

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const rec: KubeRequest = { at: Date.now(), method, path };
    requests.push(rec);
    if (method !== 'GET') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => (rec.body = Buffer.concat(chunks).toString('utf8')));
    }
    if (freezeMatch?.(method, path)) {
      rec.frozen = true;
      frozen.add(res);
      req.resume();
      return;
    }
    const delay = delays.find((d) => d.match(method, path))?.ms ?? 0;
    const isWatch = /[?&]watch=(true|1)/.test(path);
    if (isWatch && watchFailure !== undefined) {
      // A watch the apiserver refuses at once, after the list before it worked.
      req.resume();
      rec.answeredAt = Date.now();
      rec.status = watchFailure;
      res.writeHead(watchFailure, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: watchFailure }));
      return;
    }
    const headers = { ...req.headers, host: upstream.host };
    const up = httpsRequest(
      { hostname: upstream.hostname, port: upstream.port, path, method, headers, agent },
      (upRes) => {
        const answer = (): void => {
          rec.answeredAt = Date.now();
          rec.status = upRes.statusCode;
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          // Now, not with the first body chunk: a watch with no events would otherwise
          // look unanswered to the client until its connect timeout.
          res.flushHeaders();
          if (isWatch) {
            // Each chunk leaves watchDelay after it came, never before the one ahead of it.
            let chain = Promise.resolve();
            const later = (fn: () => void): void => {
              const due = Date.now() + watchDelay;
              chain = chain.then(() => new Promise<void>((r) => setTimeout(r, Math.max(0, due - Date.now())))).then(fn);
            };
            upRes.on('data', (chunk: Buffer) => later(() => res.write(chunk)));
            upRes.on('end', () => later(() => res.end()));
          } else {
            upRes.pipe(res);
          }
        };
        if (delay > 0) setTimeout(answer, delay);
        else answer();
        upRes.on('error', () => res.destroy());
      },
    );
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  server.on('connection', (socket: Socket) => {
    if (refusing) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('kube proxy: no port');
  const url = `http://127.0.0.1:${address.port}`;

  // Same identity (token), this proxy as the server.
  // client-node refuses plain HTTP unless TLS verification is off (there is no TLS to verify).
  const proxied = {
    ...config,
    clusters: [{ name: config.clusters[0]!.name, cluster: { server: url, 'insecure-skip-tls-verify': true } }],
  };
  const kubeconfig = join(opts.dir, `kube-proxy-${randomBytes(4).toString('hex')}.kubeconfig`);
  writeFileSync(kubeconfig, stringify(proxied), { mode: 0o600 });

  return {
    url,
    kubeconfig,
    requests,
    freeze(match) {
      freezeMatch = match;
    },
    unfreeze() {
      freezeMatch = undefined;
      for (const res of frozen) res.destroy();
      frozen.clear();
    },
    delayResponses(match, ms) {
      delays.push({ match, ms });
    },
    delayWatch(ms) {
      watchDelay = ms;
    },
    failWatches(status) {
      watchFailure = status;
      // The watch open now would last minutes: cut it, so the next one meets the failure.
      if (status !== undefined) for (const s of sockets) s.destroy();
    },
    refuse(on) {
      refusing = on;
      if (on) for (const s of sockets) s.destroy();
    },
    async close() {
      for (const res of frozen) res.destroy();
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Matchers for the calls the operator makes. */
export const calls = {
  lease: (_m: string, path: string): boolean => path.includes('/apis/coordination.k8s.io/') && path.includes('/leases'),
  statusWrite:
    (name: string) =>
    (method: string, path: string): boolean =>
      method === 'PATCH' && path.split('?')[0]!.endsWith(`/encryptionjobs/${name}/status`),
  /** A status write of any shard object of job `name` (shardstore.ts names them NAME-shard-N). */
  shardStatusWrite:
    (name: string) =>
    (method: string, path: string): boolean =>
      method === 'PATCH' && new RegExp(`/encryptionshards/${name}-shard-\\d+/status$`).test(path.split('?')[0]!),
  secretRead: (method: string, path: string): boolean => method === 'GET' && path.includes('/secrets/'),
};
