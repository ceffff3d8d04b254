#!/usr/bin/env node
// The worker pod's entry point (spec.workers): `node dist/worker.js --namespace NS
// --job NAME --generation N [--plan]`, the shard index from JOB_COMPLETION_INDEX
// (set by the Indexed Job). Same image as the operator. Kubernetes access is the
// pod's ServiceAccount (in-cluster config, or KUBECONFIG); AWS access is the
// SDK's default chain: the job's Secret as env, or the ServiceAccount's IRSA /
// Pod Identity. SIGTERM stops the run cleanly: objects in flight finish, the
// checkpoint is written, and the exit code says "run this index again".
import { KubeConfig } from '@kubernetes/client-node';
import { Command } from 'commander';
import { KubeClient } from './controller/kubeclient.js';
import { METADATA_RANGES } from './controller/tenancy.js';
import { AddressGuard, setProcessAddressGuard } from './engine/s3/address-guard.js';
import { EXIT_RETRY, EXIT_STOPPED, runWorker } from './controller/workerpod.js';
import { createLogger } from './log.js';

async function main(): Promise<number> {
  const opts = new Command()
    .name('s3-encryption-worker')
    .description('runs one shard of an EncryptionJob (or plans its shards) in a worker pod')
    .requiredOption('--namespace <ns>', "the EncryptionJob's namespace")
    .requiredOption('--job <name>', 'the EncryptionJob')
    .requiredOption('--generation <n>', 'the EncryptionJob generation this pod was made for')
    .option('--plan', 'plan the shards instead of running one', false)
    .option('--log-level <level>', 'trace, debug, info, warn, error', process.env.LOG_LEVEL ?? 'info')
    .parse()
    .opts<{ namespace: string; job: string; generation: string; plan: boolean; logLevel: string }>();
  const index = Number(process.env.JOB_COMPLETION_INDEX ?? '0');
  const generation = Number(opts.generation);
  const log = createLogger(opts.logLevel).child({
    worker: true,
    namespace: opts.namespace,
    name: opts.job,
    ...(opts.plan ? { step: 'plan' } : { shard: index }),
  });
  if (!Number.isInteger(index) || index < 0 || !Number.isInteger(generation)) {
    log.error({ index: process.env.JOB_COMPLETION_INDEX, generation: opts.generation }, 'bad index or generation');
    return 2;
  }
  const abort = new AbortController();
  const stop = (signal: string): void => {
    if (abort.signal.aborted) return;
    log.info({ signal }, 'stopping: finishing the objects in flight and saving the checkpoint');
    abort.abort();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // The operator judged the spec's endpoints before creating this pod; a name can
  // resolve elsewhere here, so every connection is judged again on its address.
  setProcessAddressGuard(
    new AddressGuard({ deny: [...METADATA_RANGES], advice: 'worker pods never connect to a metadata address' }),
  );
  const kc = new KubeConfig();
  kc.loadFromDefault();
  try {
    return await runWorker(
      new KubeClient(kc),
      { namespace: opts.namespace, job: opts.job, generation, index, plan: opts.plan },
      abort.signal,
      log,
    );
  } catch (err) {
    // The API server did not answer, or a bug: the Job controller runs this index again.
    log.error({ err: String(err), stack: (err as Error).stack }, 'worker failed');
    return abort.signal.aborted ? EXIT_STOPPED : EXIT_RETRY;
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(JSON.stringify({ level: 'fatal', msg: 'worker failed to start', err: String(err) }));
    process.exit(EXIT_RETRY);
  },
);
