// What a bench run needs on disk before it starts, checked up front: a missing tool used to
// surface only when the report was written, after an hour of measuring (s5cmd, which only
// test/env/build-bench.sh builds). `npm run bench` builds all of it first (package.json
// "prebench"); each message names the command that makes the missing piece.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { toolPath } from '../../test/harness/process.js';

/** The binaries (test/env cache) and bundle files one contender runs on. */
function needs(contender: string): { tools: string[]; dist: string[] } {
  if (contender.startsWith('ours-operator')) return { tools: ['kube-apiserver', 'etcd', 'kubectl'], dist: ['main.js'] };
  if (contender.startsWith('ours-cli')) return { tools: [], dist: ['cli.js'] };
  if (contender.startsWith('aws-cli')) return { tools: ['aws'], dist: [] };
  if (contender === 's5cmd') return { tools: ['s5cmd'], dist: [] };
  return { tools: [], dist: [] };
}

/** One line per missing piece, each with its fix; empty when the run can start. */
export function missingPrerequisites(root: string, contenders: string[]): string[] {
  const tools = new Set(['weed', 'local-kms']);
  const dist = new Set<string>();
  for (const c of contenders) {
    const n = needs(c);
    n.tools.forEach((t) => tools.add(t));
    n.dist.forEach((d) => dist.add(d));
  }
  const out: string[] = [];
  for (const file of dist) {
    const path = join(root, 'dist', file);
    if (!existsSync(path)) out.push(`${path} is missing: run "npm run build" (npm run bench runs it first)`);
  }
  for (const tool of tools) {
    try {
      toolPath(tool);
    } catch (err) {
      out.push((err as Error).message);
    }
  }
  return out;
}

/** A tool's version for the report, or why there is none: the report never dies for it. */
export function toolVersion(name: string, version: (path: string) => string): string {
  try {
    return version(toolPath(name));
  } catch (err) {
    return `not found (${(err as Error).message})`;
  }
}
