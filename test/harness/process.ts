// Starting and stopping the real servers the tests talk to. Every process is
// tracked so that a failing test run still stops all of them.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface ManagedProcess {
  name: string;
  pid: number;
  logFile: string;
  /** SIGTERM, then SIGKILL after a grace period; resolves when the process is gone. */
  stop(): Promise<void>;
  /** SIGKILL at once (crash drills). */
  kill(): Promise<void>;
  logTail(lines?: number): string;
  readonly exited: Promise<number | null>;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logDir: string;
  ready: () => Promise<boolean>;
  timeoutMs?: number;
}

const running = new Set<ChildProcess>();

function killAll(): void {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}
process.once('exit', killAll);

export function cacheDir(): string {
  return process.env.S3EO_CACHE_DIR ?? join(homedir(), '.cache', 's3-encryption-operator');
}

/** Tools that test/env/build-all.sh does not build, and the script that does. */
const BUILT_ELSEWHERE: Record<string, { script: string; runBy: string }> = {
  s5cmd: { script: 'test/env/build-bench.sh', runBy: 'npm run bench' },
};

export function toolPath(name: string): string {
  const path = join(cacheDir(), 'bin', name);
  if (!existsSync(path)) {
    const { script, runBy } = BUILT_ELSEWHERE[name] ?? { script: 'test/env/build-all.sh', runBy: 'npm test' };
    throw new Error(`binary "${name}" is missing at ${path}: run "bash ${script}" (${runBy} runs it first)`);
  }
  return path;
}

function tail(file: string, lines: number): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startProcess(opts: StartOptions): Promise<ManagedProcess> {
  mkdirSync(opts.logDir, { recursive: true });
  const logFile = join(opts.logDir, `${opts.name}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  running.add(child);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      exitCode = code ?? (signal ? null : 0);
      resolve(exitCode);
    });
    child.once('error', (err) => {
      running.delete(child);
      log.write(`\nspawn error: ${err.message}\n`);
      exitCode = null;
      resolve(null);
    });
  });

  const managed: ManagedProcess = {
    name: opts.name,
    pid: child.pid ?? -1,
    logFile,
    exited,
    logTail: (lines = 40) => tail(logFile, lines),
    async stop() {
      if (exitCode !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      if (exitCode !== undefined) return;
      child.kill('SIGKILL');
      await exited;
    },
  };

  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    if (exitCode !== undefined) {
      throw new Error(
        `${opts.name} exited (code ${String(exitCode)}) before it was ready; log ${logFile}:\n${managed.logTail()}`,
      );
    }
    let ok = false;
    try {
      ok = await opts.ready();
    } catch {
      ok = false;
    }
    if (ok) return managed;
    if (Date.now() > deadline) {
      await managed.stop();
      throw new Error(
        `${opts.name} was not ready after ${opts.timeoutMs ?? 60_000} ms; log ${logFile}:\n${managed.logTail()}`,
      );
    }
    await sleep(200);
  }
}
