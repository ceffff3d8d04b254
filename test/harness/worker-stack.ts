// What a worker-pod test runs besides the shared servers: the real Job
// controller (kube-controller-manager), the kubelet stand-in for the test's
// namespace, and the operator, whose worker pods run `node dist/worker.js`.
import { join } from 'node:path';
import { inject } from 'vitest';
import { startControllerManager } from './controller-manager.js';
import { ROOT, startOperator, type OperatorProcess } from './context.js';
import { startPodRunner, type PodRunner } from './pod-runner.js';
import type { ManagedProcess } from './process.js';

export interface WorkerStack {
  kcm: ManagedProcess;
  runner: PodRunner;
  operator: OperatorProcess;
  /** The operator's log tail and the controller manager's, for a failure message. */
  logs(): string;
  stop(): Promise<void>;
}

/** `args`: more operator flags; `kubeconfig`: the operator's (e.g. through the kube proxy). */
export async function startWorkerStack(
  namespace: string,
  opts: { args?: string[]; kubeconfig?: string } = {},
): Promise<WorkerStack> {
  const work = join(inject('workDir'), namespace);
  const { adminKubeconfig } = inject('kube');
  const kcm = await startControllerManager({ workDir: join(work, 'kcm'), kubeconfig: adminKubeconfig });
  const runner = await startPodRunner({ kubeconfig: adminKubeconfig, namespace, logDir: join(work, 'pods') });
  const operator = await startOperator({
    watchNamespace: namespace,
    ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}),
    args: [
      '--worker-image=stand-in',
      `--worker-command=${JSON.stringify([process.execPath, join(ROOT, 'dist', 'worker.js')])}`,
      ...(opts.args ?? []),
    ],
  });
  return {
    kcm,
    runner,
    operator,
    logs: () => `${operator.logTail(40)}\n--- kube-controller-manager\n${kcm.logTail(10)}`,
    stop: async () => {
      await operator.stop();
      await runner.stop();
      await kcm.stop();
    },
  };
}
