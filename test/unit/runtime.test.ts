// The suite runs on the project's Node (Node 24 LTS, fetched into the cache by
// test/env/build-node.sh), not on whatever Node the machine has: `npm test`
// starts vitest through test/env/node.sh. Run a single file the same way:
//   bash test/env/node.sh npx vitest run test/unit/runtime.test.ts
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const pinned = /^NODE_VERSION=(\S+)$/m.exec(readFileSync(join(ROOT, 'test', 'env', 'build-node.sh'), 'utf8'))?.[1];
const hint = 'run the tests through `npm test` or `bash test/env/node.sh npx vitest run ...`';

describe('runtime', () => {
  it('the tests run on Node 24, the version test/env/build-node.sh pins', () => {
    expect(pinned).toMatch(/^24\.\d+\.\d+$/);
    expect(process.version, hint).toBe(`v${pinned ?? '?'}`);
  });

  it('`node --version` (the node on PATH, which tools the tests start use) is the same Node 24', () => {
    expect(execFileSync('node', ['--version'], { encoding: 'utf8' }).trim(), hint).toBe(`v${pinned ?? '?'}`);
  });

  it('package.json admits Node 22.12 and later, and types the Node 24 API', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      engines: { node: string };
      devDependencies: Record<string, string>;
    };
    expect(pkg.engines.node).toBe('>=22.12');
    expect(pkg.devDependencies['@types/node']).toMatch(/^24\./);
  });
});
