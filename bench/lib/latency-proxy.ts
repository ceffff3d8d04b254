// The fault proxy as a process of its own, adding a fixed latency to every
// request: a bench that wants requests, not the client's CPU, to bound it keeps
// the proxy's own work off the measured process. Prints its URL on stdout, and
// exits when its stdin closes (the parent ended).
//
//   node --import tsx bench/lib/latency-proxy.ts <target-url> <latency-ms>
import { startFaultProxy } from '../../test/harness/fault-proxy.js';

const [target, ms] = process.argv.slice(2);
if (!target || !ms) throw new Error('usage: latency-proxy.ts <target-url> <latency-ms>');
const latency = Number(ms);
const proxy = await startFaultProxy({
  target,
  protocol: 's3',
  seed: 1,
  rates: { latency: 1, latencyMs: [latency, latency] },
});
process.stdout.write(`${proxy.url}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void proxy.stop().finally(() => process.exit(0));
});
