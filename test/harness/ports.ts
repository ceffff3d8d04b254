// Free loopback ports for the test servers.
//
// A port the kernel hands out for listen(0) lies in the ephemeral range, which is
// also where every outbound connection takes its local port: between our probe and
// the server's bind, a connection of any process may claim it (CI saw SeaweedFS die
// with "bind: address already in use" on such a port). Ports below the range are
// never taken by outbound connections, so we pick there. Parallel test workers pick
// from the same space: a reservation file per port, made with O_EXCL, keeps two of
// them from handing out one port before either server has bound it.
import { randomInt } from 'node:crypto';
import { mkdirSync, openSync, closeSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LOWEST = 10_000;
/** Long enough for any server to bind; after that the bind probe protects the port. */
const RESERVATION_MS = 10 * 60_000;
const RESERVATIONS = join(tmpdir(), 's3eo-port-reservations');

/** The first port of the kernel's ephemeral range (32768 on Linux unless tuned). */
function ephemeralFloor(): number {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(first) && first > LOWEST + 1_000) return first;
  } catch {
    // not Linux: the IANA dynamic range starts at 49152, Linux's default at 32768
  }
  return 32_768;
}

/** True when this process now holds the reservation of `port`. */
function reserve(port: number): boolean {
  const file = join(RESERVATIONS, String(port));
  try {
    closeSync(openSync(file, 'wx'));
    return true;
  } catch {
    // Someone holds it; a reservation older than any server start is stale.
    try {
      if (Date.now() - statSync(file).mtimeMs < RESERVATION_MS) return false;
      const now = new Date();
      utimesSync(file, now, now);
      return true;
    } catch {
      return false;
    }
  }
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A loopback port below the ephemeral range that nothing listens on and no other test worker was given. */
export async function freePort(): Promise<number> {
  mkdirSync(RESERVATIONS, { recursive: true });
  const floor = ephemeralFloor();
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = randomInt(LOWEST, floor);
    if (reserve(port) && (await canBind(port))) return port;
  }
  throw new Error(`no free loopback port between ${LOWEST} and ${floor} after 500 tries`);
}

/** `count` distinct free loopback ports. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}
