#!/usr/bin/env node
// The operator process: flags, logging, metrics and probe servers, leader
// election, the manager, and a clean shutdown on SIGTERM.
import { createServer, type Server } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { LeaderElector } from './controller/leader.js';
import { Manager } from './controller/manager.js';
import { addressGuardFor, parseRoleRules, splitList, type TenancyPolicy } from './controller/tenancy.js';
import { DEFAULT_WORKER_SPILL_MIB, type WorkerTemplate } from './controller/workerjob.js';
import { setProcessAddressGuard } from './engine/s3/address-guard.js';
import { createLogger, type Logger } from './log.js';
import { Metrics } from './metrics.js';

function podNamespace(): string {
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim();
  } catch {
    return 's3-encryption-operator';
  }
}

function parseAddress(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = i > 0 ? addr.slice(0, i) : '0.0.0.0';
  const port = Number(addr.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad address "${addr}": want [host]:port`);
  return { host: host.replace(/^\[|\]$/g, ''), port };
}

function listen(server: Server, addr: string): Promise<void> {
  const { host, port } = parseAddress(addr);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

function splitWords(value: string): string[] {
  return value.split(/\s+/).filter(Boolean);
}

type Flags = {
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  leaderElect: boolean;
  leaderElectionNamespace?: string;
  leaderElectionId: string;
  maxConcurrentReconciles: string;
  watchNamespace: string;
  maxInflightObjects: string;
  runRetryDelay: string;
  stallTimeout: string;
  logLevel: string;
  ambientIdentityNamespaces?: string;
  allowedRoleArns: string;
  allowedReportDestinations: string;
  reportPrefix: string;
  allowedEndpointHosts: string;
  deniedEndpointAddresses: string;
  workerImage: string;
  workerCommand: string;
  workerImagePullPolicy: string;
  workerJobTtl: string;
  workerStartGrace: string;
  workersClusterRole: string;
  workerSpillMib: string;
};

/** The process's own flags: servers, leader election, reconcilers, logging. */
function processFlags(program: Command): Command {
  return program
    .option('--metrics-bind-address <addr>', 'address of the Prometheus /metrics endpoint', ':8080')
    .option('--health-probe-bind-address <addr>', 'address of /healthz and /readyz', ':8081')
    .option('--leader-elect', 'elect a leader with a coordination.k8s.io Lease before doing any work', false)
    .option('--leader-election-namespace <ns>', 'namespace of the Lease (default: the pod namespace)')
    .option('--leader-election-id <name>', 'name of the Lease', 's3-encryption-operator')
    .option('--max-concurrent-reconciles <n>', 'reconcile workers', '4')
    .option(
      '--max-inflight-objects <n>',
      'objects in flight across all jobs (each job also has spec.concurrency)',
      '256',
    )
    .option(
      '--run-retry-delay <ms>',
      'first delay before a run that failed on a passing error (network, 5xx) is tried again; doubles, 6 tries',
      '5000',
    )
    .option('--watch-namespace <ns>', 'watch EncryptionJobs in this namespace only (default: all namespaces)', '')
    .option(
      '--stall-timeout <seconds>',
      '/healthz fails when a reconcile runs longer than this, or the watch of jobs fails for longer',
      '300',
    )
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info');
}

/** What a job may ask of the operator's identity and network (docs/install.md, "Multi-tenant clusters"). */
function tenancyFlags(program: Command): Command {
  return program
    .option(
      '--ambient-identity-namespaces <list>',
      'namespaces whose jobs may use the operator\'s own AWS identity without a Secret ("*" = all; default: the operator\'s namespace)',
    )
    .option(
      '--allowed-role-arns <list>',
      'roles a namespace may assume through the operator\'s identity: NAMESPACE=ARN_PATTERN,... ("*" wildcards)',
      '',
    )
    .option(
      '--allowed-report-destinations <list>',
      "report destinations allowed besides the job's own bucket: s3://BUCKET/PREFIX* patterns",
      '',
    )
    .option(
      '--report-prefix <prefix>',
      'key prefix under which a job may write its report into its own bucket',
      'reports/',
    )
    .option(
      '--allowed-endpoint-hosts <list>',
      'hosts that spec.connection endpoints may name (host or host:port, "*" wildcards; default: any but a metadata service)',
      '',
    )
    .option(
      '--denied-endpoint-addresses <list>',
      'address ranges (CIDR) no endpoint may resolve to, besides the metadata services (e.g. the cluster service CIDR)',
      '',
    );
}

/** The worker pods of spec.workers jobs. */
function workerFlags(program: Command): Command {
  return program
    .option(
      '--worker-image <image>',
      'image of the worker pods of spec.workers jobs (default: $WORKER_IMAGE, the operator image the chart sets)',
      process.env.WORKER_IMAGE ?? 's3-encryption-operator:latest',
    )
    .option(
      '--worker-command <command>',
      'command of the worker entry point in that image (words separated by spaces, or a JSON array)',
      'node dist/worker.js',
    )
    .option(
      '--worker-image-pull-policy <policy>',
      "imagePullPolicy of the worker container (default: the cluster's)",
      '',
    )
    .option(
      '--worker-job-ttl <seconds>',
      'ttlSecondsAfterFinished of worker Jobs: they and their pods (and logs) go this long after they finish; -1 keeps them until the EncryptionJob is deleted',
      '86400',
    )
    .option(
      '--worker-start-grace <seconds>',
      'how long worker pods may take to start (image pull, scheduling, quota) before the job turns Progressing=False with the reason',
      '120',
    )
    .option(
      '--workers-cluster-role <name>',
      'the ClusterRole a namespace binds to the operator to allow worker pods (named in WorkersNotAllowed)',
      's3-encryption-operator-workers',
    )
    .option(
      '--worker-spill-mib <n>',
      "MiB of each worker pod's volume for inventory sorts (its TMPDIR; S3EO_SPILL_LIMIT_MIB)",
      String(DEFAULT_WORKER_SPILL_MIB),
    );
}

function parseFlags(): Flags {
  const program = new Command()
    .name('s3-encryption-operator')
    .description('Kubernetes operator that re-encrypts the objects already stored in S3 buckets');
  workerFlags(tenancyFlags(processFlags(program))).parse();
  const opts = program.opts<Flags>();
  if (!Number.isInteger(Number(opts.workerJobTtl)))
    throw new Error(`--worker-job-ttl must be a whole number of seconds, not "${opts.workerJobTtl}"`);
  if (!(Number.isInteger(Number(opts.workerSpillMib)) && Number(opts.workerSpillMib) > 0))
    throw new Error(`--worker-spill-mib must be a positive whole number of MiB, not "${opts.workerSpillMib}"`);
  if (!(Number(opts.workerStartGrace) >= 0))
    throw new Error(`--worker-start-grace must be a number of seconds, not "${opts.workerStartGrace}"`);
  return opts;
}

function tenancyPolicy(opts: Flags): TenancyPolicy {
  return {
    ambientNamespaces:
      opts.ambientIdentityNamespaces === undefined ? [podNamespace()] : splitList(opts.ambientIdentityNamespaces),
    allowedRoles: parseRoleRules(opts.allowedRoleArns),
    reportDestinations: splitList(opts.allowedReportDestinations),
    reportPrefix: opts.reportPrefix,
    endpointHosts: splitList(opts.allowedEndpointHosts),
    deniedAddresses: splitList(opts.deniedEndpointAddresses),
  };
}

function workerTemplate(opts: Flags): WorkerTemplate {
  return {
    image: opts.workerImage,
    command: opts.workerCommand.trim().startsWith('[')
      ? (JSON.parse(opts.workerCommand) as string[])
      : splitWords(opts.workerCommand),
    ...(opts.workerImagePullPolicy ? { imagePullPolicy: opts.workerImagePullPolicy } : {}),
    ...(Number(opts.workerJobTtl) >= 0 ? { ttlSecondsAfterFinished: Number(opts.workerJobTtl) } : {}),
    clusterRole: opts.workersClusterRole,
    spillMiB: Number(opts.workerSpillMib),
    startGraceSeconds: Number(opts.workerStartGrace),
  };
}

function metricsServer(metrics: Metrics): Server {
  return createServer((req, res) => {
    if (req.url?.startsWith('/metrics')) {
      metrics.registry
        .metrics()
        .then((body) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(body);
        })
        .catch((err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        });
      return;
    }
    res.writeHead(404);
    res.end();
  });
}

function probeServer(manager: Manager, stallMs: number, isReady: () => boolean, log: Logger): Server {
  return createServer((req, res) => {
    if (req.url?.startsWith('/healthz')) {
      // A wedged worker or a lost watch does not mend itself: let the kubelet restart us.
      const health = manager.health(stallMs);
      if (!health.ok) log.error({ problems: health.problems }, 'liveness check failed');
      res.writeHead(health.ok ? 200 : 503);
      res.end(health.ok ? 'ok' : `unhealthy: ${health.problems.join('; ')}`);
      return;
    }
    if (req.url?.startsWith('/readyz')) {
      const ready = isReady();
      res.writeHead(ready ? 200 : 503);
      res.end(ready ? 'ok' : 'not ready');
      return;
    }
    res.writeHead(404);
    res.end();
  });
}

async function main(): Promise<void> {
  const opts = parseFlags();
  const log = createLogger(opts.logLevel);
  const metrics = new Metrics();
  const kc = new KubeConfig();
  kc.loadFromDefault();

  const policy = tenancyPolicy(opts);
  log.info({ tenancy: policy }, 'tenancy policy');
  // Every S3, KMS and STS connection the operator makes is judged on its address, after resolution.
  setProcessAddressGuard(addressGuardFor(policy));
  const manager = new Manager({
    kubeConfig: kc,
    metrics,
    log,
    workers: Number(opts.maxConcurrentReconciles),
    policy,
    workerTemplate: workerTemplate(opts),
    maxInflightObjects: Number(opts.maxInflightObjects),
    retryBaseMs: Number(opts.runRetryDelay),
    ...(opts.watchNamespace ? { namespace: opts.watchNamespace } : {}),
  });
  let ready = false;
  const metricsHttp = metricsServer(metrics);
  const probeHttp = probeServer(manager, Number(opts.stallTimeout) * 1000, () => ready, log);
  await listen(metricsHttp, opts.metricsBindAddress);
  await listen(probeHttp, opts.healthProbeBindAddress);
  log.info({ metrics: opts.metricsBindAddress, probes: opts.healthProbeBindAddress }, 'serving metrics and probes');

  const elector = opts.leaderElect
    ? new LeaderElector({
        kubeConfig: kc,
        namespace: opts.leaderElectionNamespace ?? podNamespace(),
        name: opts.leaderElectionId,
        identity: `${hostname()}_${randomBytes(4).toString('hex')}`,
        log,
        onStatus: (leader) => metrics.leaderStatus.set({ name: opts.leaderElectionId }, leader ? 1 : 0),
      })
    : undefined;

  let shuttingDown = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    ready = false;
    log.info({ signal }, 'shutting down: stopping runs and saving checkpoints');
    const timer = setTimeout(() => {
      log.error('shutdown took too long; exiting');
      process.exit(1);
    }, 25_000);
    await manager.stop();
    await elector?.release();
    clearTimeout(timer);
    metricsHttp.close();
    probeHttp.close();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  // A standby is ready (it serves probes and metrics); only the leader reconciles.
  ready = true;
  if (elector) {
    metrics.leaderStatus.set({ name: opts.leaderElectionId }, 0);
    await elector.acquire();
    if (shuttingDown) return;
    elector.keepRenewing(() => {
      // Another replica may already be running our jobs: stop at once, do not finish in-flight work.
      log.error('leadership lost: exiting so that only one replica runs jobs');
      process.exit(1);
    });
  }
  await manager.start();
  log.info('controller started');
}

main().catch((err: unknown) => {
  console.error(JSON.stringify({ level: 'fatal', msg: 'operator failed to start', err: String(err) }));
  process.exit(1);
});
