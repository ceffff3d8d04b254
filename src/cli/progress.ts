// What s3-encrypt shows while it runs, on stderr: a progress bar on a terminal,
// otherwise a JSON line every 5 s (none with --json).
import cliProgress from 'cli-progress';
import { addCounters, type Counters, type Progress } from '../engine/index.js';
import { formatBytes } from './print.js';

export class ProgressDisplay {
  private readonly bar: cliProgress.SingleBar | undefined;
  private readonly started = performance.now();
  private lastLine = 0;
  private readonly quiet: boolean;

  /**
   * base: the counters of the keys the resume file says are finished (shown as done).
   * quiet: --json (nothing but the summary).
   */
  constructor(
    private readonly base: Counters,
    opts: { bar: boolean; quiet: boolean },
  ) {
    this.quiet = opts.quiet;
    this.bar = opts.bar
      ? new cliProgress.SingleBar(
          {
            format:
              '{bar} {percentage}% | {scanned}/{total} objects | {rate} obj/s | {bytes} | ETA {eta_formatted} | enc {encrypted} already {already} skip {skipped} fail {failed}',
            hideCursor: true,
            stream: process.stderr,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  }

  start(): void {
    this.bar?.start(1, 0, { scanned: 0, rate: '0', bytes: '0 B', encrypted: 0, already: 0, skipped: 0, failed: 0 });
  }

  stop(): void {
    this.bar?.stop();
  }

  /** Shown: every finished object (the resume file saves only those under the checkpoint). */
  update(p: Progress): void {
    const c = addCounters(this.base, p.counters);
    const secs = (performance.now() - this.started) / 1000;
    const rate = secs > 0 ? (p.counters.scanned / secs).toFixed(0) : '0';
    const fields = {
      scanned: c.scanned,
      rate,
      bytes: formatBytes(c.bytesEncrypted),
      encrypted: c.encrypted,
      already: c.alreadyEncrypted,
      skipped: c.skipped,
      failed: c.failed,
    };
    const total = p.total !== undefined ? this.base.scanned + p.total : undefined;
    if (this.bar) {
      // Until the count beside the run has a total, grow the bar with what is listed.
      this.bar.setTotal(Math.max(total ?? c.scanned + 1, c.scanned, 1));
      this.bar.update(c.scanned, fields);
    } else if (!this.quiet && performance.now() - this.lastLine > 5000) {
      this.lastLine = performance.now();
      process.stderr.write(
        `${JSON.stringify({ msg: 'progress', ...fields, ...(total !== undefined ? { total } : {}), checkpoint: p.checkpoint })}\n`,
      );
    }
  }
}
