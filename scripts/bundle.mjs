// Builds dist/{main,cli,worker}.js: one minified ESM file per entry point with every
// dependency inside. Why a bundle and not tsc's module tree: @kubernetes/client-node
// loads all of its ~1,000 generated API and model modules when KubeConfig is imported,
// which took a bare Node from 44 to 129 MiB RSS; bundled, tree-shaken and minified the
// same imports take 75 MiB (bench/PROFILE.md, "Memory"). The image then needs no
// node_modules at run time.
//
// Type checking is not done here (esbuild strips types): `npm run typecheck` does it.
//
// Usage: node scripts/bundle.mjs [OUTDIR]   (default dist/, emptied first)
import { build } from 'esbuild';
import { readFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = resolve(process.argv[2] ?? join(root, 'dist'));
/** @type {{ engines: { node: string } }} */
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
const oldestNode = /\d+/.exec(pkg.engines.node)?.[0];
if (!oldestNode) throw new Error(`package.json engines.node has no version: ${pkg.engines.node}`);

await rm(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/main.ts', 'src/cli.ts', 'src/worker.ts'],
  outdir,
  bundle: true,
  platform: 'node',
  format: 'esm',
  // The oldest Node package.json's engines allows.
  target: `node${oldestNode}`,
  minify: true,
  // Error and class names stay readable in logs (the SDK and our code set error names by string,
  // but stack frames and `constructor.name` in log lines use the function names).
  keepNames: true,
  // The map is written next to each file, not loaded: `node --enable-source-maps dist/main.js`
  // maps stack traces back to src/ when needed, at no memory cost otherwise.
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'linked',
  // CommonJS dependencies call require() for Node built-ins; an ES module has no require.
  banner: {
    js: "import { createRequire as __s3eoRequire } from 'node:module'; const require = __s3eoRequire(import.meta.url);",
  },
  logLevel: 'warning',
  metafile: true,
});
const outputs = Object.entries(result.metafile.outputs).filter(([f]) => f.endsWith('.js'));
for (const [file, out] of outputs) process.stdout.write(`${file} ${(out.bytes / 2 ** 20).toFixed(1)} MiB\n`);
