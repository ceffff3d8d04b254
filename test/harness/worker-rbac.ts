// What a namespace's admins apply for worker pods (deploy/workers/), in a test's
// namespace: the files users apply, with only the namespace changed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { kubectl, ROOT } from './context.js';

interface Doc {
  metadata: { namespace?: string };
  subjects?: { namespace?: string }[];
}

function docs(file: string): Doc[] {
  return parseAllDocuments(readFileSync(join(ROOT, 'deploy', 'workers', file), 'utf8')).map((d) => d.toJS() as Doc);
}

/** deploy/workers/worker-rbac.yaml: the marked worker ServiceAccount and its Role, in `ns`. */
export async function applyWorkerServiceAccount(ns: string): Promise<void> {
  for (const doc of docs('worker-rbac.yaml')) {
    doc.metadata.namespace = ns;
    for (const s of doc.subjects ?? []) s.namespace = ns;
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(doc) });
  }
}

/**
 * deploy/workers/operator-rbac.yaml: `ns` allows worker pods (a RoleBinding there of the workers
 * ClusterRole to the operator's ServiceAccount, which stays in the operator's namespace).
 */
export async function allowWorkerPods(ns: string): Promise<void> {
  for (const doc of docs('operator-rbac.yaml')) {
    doc.metadata.namespace = ns;
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(doc) });
  }
}
