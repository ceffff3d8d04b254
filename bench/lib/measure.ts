// Running a contender as a child process and measuring what it cost the
// client: wall time, CPU seconds (user + system) and peak RSS, from GNU time.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Measured {
  code: number;
  wallSeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  stdout: string;
  stderr: string;
}

/** `/usr/bin/time -f` gives the child's own user/system CPU and max RSS (KiB). */
export async function runMeasured(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 1_800_000,
): Promise<Measured> {
  const dir = mkdtempSync(join(tmpdir(), 's3eo-bench-time-'));
  const out = join(dir, 'time.txt');
  const started = performance.now();
  const child = spawn('/usr/bin/time', ['-f', '%U %S %M', '-o', out, command, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-2_000_000)));
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-200_000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  clearTimeout(timer);
  const wallSeconds = (performance.now() - started) / 1000;
  let cpuSeconds = NaN;
  let peakRssMiB = NaN;
  try {
    const line = readFileSync(out, 'utf8').trim().split('\n').pop() ?? '';
    const [u, s, m] = line.split(/\s+/).map(Number);
    cpuSeconds = (u ?? NaN) + (s ?? NaN);
    peakRssMiB = (m ?? NaN) / 1024;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { code, wallSeconds, cpuSeconds, peakRssMiB, stdout, stderr };
}

const CLOCK_TICKS = 100;

/** CPU seconds (user + system) a live process has used so far, from /proc. */
export function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ": state is field 3, utime field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Peak resident set of a live process so far (VmHWM), MiB. */
export function procPeakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}
