// A TEST-ONLY STAND-IN FOR THE KUBELET (and the scheduler). Not a container
// runtime: no images, no isolation, no volumes, no probes, no restarts.
//
// It registers one fake Node (Ready), binds the unscheduled pods of one namespace
// to it, runs each pod's containers one after the other as local processes
// (container `command` + `args`, which must be set: there is no image entrypoint)
// with the environment the kubelet would give them (explicit env, fieldRef,
// secretKeyRef, configMapKeyRef, envFrom; the Job controller passes
// JOB_COMPLETION_INDEX as a fieldRef to the completion-index annotation; the
// pod's ServiceAccount identity as a KUBECONFIG with a TokenRequest token, where
// the kubelet would mount a token file), and writes the pod's phase and each container's exit code back to the pod's
// status. A pod being deleted gets SIGTERM (SIGKILL after its grace period), and
// once its process has exited is removed the way the kubelet removes it (grace period 0). So the real Job controller
// (test/harness/controller-manager.ts) can drive real Indexed Jobs in tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  Watch,
  type V1Container,
  type V1ContainerStatus,
  type V1Pod,
} from '@kubernetes/client-node';

export interface PodRunner {
  nodeName: string;
  /** Pods this runner started, by name (a pod's name is unique within the namespace while it exists). */
  readonly started: string[];
  stop(): Promise<void>;
}

interface Running {
  child?: ChildProcess;
  deleting: boolean;
}

/** Resolves `metadata.annotations['x']`-style field paths the way the kubelet's downward API does. */
function fieldValue(pod: V1Pod, path: string): string {
  const m = /^metadata\.(annotations|labels)\['(.+)'\]$/.exec(path);
  if (m) return (m[1] === 'annotations' ? pod.metadata?.annotations : pod.metadata?.labels)?.[m[2] ?? ''] ?? '';
  switch (path) {
    case 'metadata.name':
      return pod.metadata?.name ?? '';
    case 'metadata.namespace':
      return pod.metadata?.namespace ?? '';
    case 'metadata.uid':
      return pod.metadata?.uid ?? '';
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? '';
    default:
      throw new Error(`pod-runner: fieldRef ${path} is not supported by this stand-in`);
  }
}

export async function startPodRunner(opts: {
  kubeconfig: string;
  namespace: string;
  logDir: string;
}): Promise<PodRunner> {
  const kc = new KubeConfig();
  kc.loadFromFile(opts.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const logDir = resolve(opts.logDir);
  await mkdir(logDir, { recursive: true });
  const nodeName = `fake-node-${randomBytes(3).toString('hex')}`;
  const ns = opts.namespace;
  const pods = new Map<string, Running>(); // by pod uid
  const started: string[] = [];
  let stopped = false;
  let abort: AbortController | undefined;

  await core.createNode({ body: { metadata: { name: nodeName, labels: { 'kubernetes.io/hostname': nodeName } } } });
  const now = new Date();
  await core.patchNodeStatus(
    {
      name: nodeName,
      body: {
        status: {
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'KubeletReady',
              message: 'pod-runner stand-in',
              lastHeartbeatTime: now,
              lastTransitionTime: now,
            },
          ],
          allocatable: { cpu: '64', memory: '256Gi', pods: '500' },
          capacity: { cpu: '64', memory: '256Gi', pods: '500' },
        },
      },
    },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );

  const patchStatus = (name: string, status: object): Promise<unknown> =>
    core.patchNamespacedPodStatus(
      { name, namespace: ns, body: { status } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );

  const secretCache = new Map<string, Record<string, string>>();
  const readSource = async (kind: 'Secret' | 'ConfigMap', name: string): Promise<Record<string, string>> => {
    if (kind === 'Secret') {
      const s = await core.readNamespacedSecret({ name, namespace: ns });
      return Object.fromEntries(
        Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
      );
    }
    const cm = await core.readNamespacedConfigMap({ name, namespace: ns });
    return cm.data ?? {};
  };
  const source = async (kind: 'Secret' | 'ConfigMap', name: string): Promise<Record<string, string>> => {
    const cacheKey = `${kind}/${name}`;
    let v = secretCache.get(cacheKey);
    if (v === undefined) {
      v = await readSource(kind, name);
      secretCache.set(cacheKey, v);
    }
    return v;
  };

  /**
   * The kubelet mounts a ServiceAccount token file; a local process gets a
   * kubeconfig with such a token instead (none when the ServiceAccount does not exist).
   */
  const serviceAccountKubeconfig = async (pod: V1Pod): Promise<string | undefined> => {
    const sa = pod.spec?.serviceAccountName;
    const cluster = kc.getCurrentCluster();
    if (!sa || pod.spec?.automountServiceAccountToken === false || !cluster) return undefined;
    const tr = await core
      .createNamespacedServiceAccountToken({
        name: sa,
        namespace: ns,
        body: { spec: { audiences: [], expirationSeconds: 3600 } },
      })
      .catch(() => undefined);
    const token = tr?.status?.token;
    if (!token) return undefined;
    const file = join(logDir, `${pod.metadata?.name ?? 'pod'}.kubeconfig`);
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'c',
          cluster: {
            server: cluster.server,
            ...(cluster.caData ? { 'certificate-authority-data': cluster.caData } : {}),
          },
        },
      ],
      users: [{ name: 'u', user: { token } }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'u', namespace: ns } }],
      'current-context': 'c',
    };
    await writeFile(file, JSON.stringify(config), { mode: 0o600 });
    return file;
  };

  const containerEnv = async (
    pod: V1Pod,
    c: V1Container,
    kubeconfig: string | undefined,
  ): Promise<Record<string, string>> => {
    // The image's environment is the host's PATH and HOME here; nothing else of the runner leaks in.
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/',
      HOSTNAME: pod.spec?.hostname ?? pod.metadata?.name ?? '',
      ...(kubeconfig ? { KUBECONFIG: kubeconfig } : {}),
    };
    for (const from of c.envFrom ?? []) {
      const kind = from.secretRef ? 'Secret' : 'ConfigMap';
      const ref = from.secretRef ?? from.configMapRef;
      if (!ref?.name) continue;
      const values = await source(kind, ref.name).catch((e: unknown): Record<string, string> => {
        if (ref.optional) return {};
        throw e;
      });
      for (const [k, v] of Object.entries(values)) env[`${from.prefix ?? ''}${k}`] = v;
    }
    for (const e of c.env ?? []) {
      const vf = e.valueFrom;
      if (vf === undefined)
        env[e.name] = (e.value ?? '').replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, n: string) => env[n] ?? all);
      else if (vf.fieldRef) env[e.name] = fieldValue(pod, vf.fieldRef.fieldPath);
      else if (vf.secretKeyRef || vf.configMapKeyRef) {
        const ref = vf.secretKeyRef ?? vf.configMapKeyRef;
        const values = await source(vf.secretKeyRef ? 'Secret' : 'ConfigMap', ref?.name ?? '').catch(
          (err: unknown): Record<string, string> => {
            if (ref?.optional) return {};
            throw err;
          },
        );
        const v = values[ref?.key ?? ''];
        if (v !== undefined) env[e.name] = v;
        else if (!ref?.optional) throw new Error(`key ${ref?.key} not found in ${ref?.name}`);
      } else throw new Error(`env ${e.name}: this stand-in supports fieldRef, secretKeyRef and configMapKeyRef only`);
    }
    return env;
  };

  const runContainer = (pod: V1Pod, c: V1Container, env: Record<string, string>, state: Running): Promise<number> => {
    const argv = [...(c.command ?? []), ...(c.args ?? [])].map((a) =>
      a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, n: string) => env[n] ?? all),
    );
    const [cmd, ...args] = argv;
    if (cmd === undefined)
      return Promise.reject(new Error(`container ${c.name} has no command (this stand-in runs no images)`));
    const log = createWriteStream(join(logDir, `${pod.metadata?.name ?? 'pod'}_${c.name}.log`), { flags: 'a' });
    return new Promise<number>((resolveExit) => {
      const child = spawn(cmd, args, { env, cwd: c.workingDir ?? process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
      state.child = child;
      child.stdout.pipe(log, { end: false });
      child.stderr.pipe(log, { end: false });
      child.on('error', (e) => {
        log.end(`pod-runner: ${e.message}\n`);
        resolveExit(127);
      });
      child.on('close', (code, signal) => {
        log.end();
        state.child = undefined;
        resolveExit(code ?? (signal === 'SIGKILL' ? 137 : 143));
      });
    });
  };

  const runPod = async (pod: V1Pod, state: Running): Promise<void> => {
    const name = pod.metadata?.name ?? '';
    started.push(name);
    const startedAt = new Date();
    const containers = pod.spec?.containers ?? [];
    await patchStatus(name, {
      phase: 'Running',
      startTime: startedAt,
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: startedAt }],
      containerStatuses: containers.map((c) => ({
        name: c.name,
        image: c.image ?? '',
        imageID: '',
        ready: true,
        restartCount: 0,
        started: true,
        state: { running: { startedAt } },
      })),
    });
    const kubeconfig = await serviceAccountKubeconfig(pod);
    const statuses: V1ContainerStatus[] = [];
    let failed = false;
    for (const c of containers) {
      let exitCode: number;
      let message: string | undefined;
      try {
        exitCode =
          failed || state.deleting ? 137 : await runContainer(pod, c, await containerEnv(pod, c, kubeconfig), state);
      } catch (e) {
        exitCode = 128;
        message = e instanceof Error ? e.message : String(e);
      }
      if (exitCode !== 0) failed = true;
      const finishedAt = new Date();
      statuses.push({
        name: c.name,
        image: c.image ?? '',
        imageID: '',
        ready: false,
        restartCount: 0,
        state: {
          terminated: {
            exitCode,
            reason: exitCode === 0 ? 'Completed' : 'Error',
            startedAt,
            finishedAt,
            ...(message ? { message } : {}),
          },
        },
      });
    }
    await patchStatus(name, {
      phase: failed ? 'Failed' : 'Succeeded',
      conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: new Date() }],
      containerStatuses: statuses,
    }).catch(() => undefined); // the pod may be gone already
  };

  const onPod = (type: string, pod: V1Pod): void => {
    const uid = pod.metadata?.uid ?? '';
    const name = pod.metadata?.name ?? '';
    if (type === 'DELETED') {
      pods.get(uid)?.child?.kill('SIGKILL');
      pods.delete(uid);
      return;
    }
    if (!pod.spec?.nodeName) {
      if (pod.metadata?.deletionTimestamp) return;
      // The scheduler's part. Another runner may bind it first: then the API answers a conflict.
      void core
        .createNamespacedPodBinding({
          name,
          namespace: ns,
          body: { metadata: { name }, target: { apiVersion: 'v1', kind: 'Node', name: nodeName } },
        })
        .catch(() => undefined);
      return;
    }
    if (pod.spec.nodeName !== nodeName) return;
    let state = pods.get(uid);
    if (pod.metadata?.deletionTimestamp) {
      // The kubelet's part of a graceful delete: stop the containers, then remove the pod for good.
      if (state?.deleting) return;
      if (state === undefined) {
        state = { deleting: true };
        pods.set(uid, state);
      }
      state.deleting = true;
      const remove = (): void =>
        void core.deleteNamespacedPod({ name, namespace: ns, gracePeriodSeconds: 0 }).catch(() => undefined);
      const child = state.child;
      if (child === undefined) return remove();
      // As the kubelet does: SIGTERM, the pod stays until the process has exited (SIGKILL after the grace period).
      const graceMs = 1000 * (pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30);
      const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
      child.once('close', () => {
        clearTimeout(kill);
        remove();
      });
      child.kill('SIGTERM');
      return;
    }
    if (state !== undefined || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
    state = { deleting: false };
    pods.set(uid, state);
    void runPod(pod, state).catch((e: unknown) => console.error(`pod-runner: pod ${ns}/${name}:`, e));
  };

  const startWatch = async (): Promise<void> => {
    if (stopped) return;
    // A watch without a resourceVersion begins with an ADDED event per existing pod, so a restart misses nothing.
    abort = await new Watch(kc).watch(
      `/api/v1/namespaces/${ns}/pods`,
      {},
      (type: string, obj: V1Pod) => onPod(type, obj),
      () => {
        if (!stopped) setTimeout(() => void startWatch().catch(() => undefined), 200);
      },
    );
  };
  await startWatch();

  return {
    nodeName,
    started,
    async stop() {
      stopped = true;
      abort?.abort();
      for (const s of pods.values()) s.child?.kill('SIGKILL');
      await core.deleteNode({ name: nodeName }).catch(() => undefined);
    },
  };
}
