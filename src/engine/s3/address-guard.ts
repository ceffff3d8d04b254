// Which addresses a run may connect to. The rule judges the address a socket is
// about to connect to, never the spelling of an endpoint: an IPv4 address hidden
// in an IPv6 one (::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4, Teredo), decimal,
// octal or hex IPv4 (WHATWG URL and getaddrinfo turn them into the address), and a
// name that resolves to a denied address all end at the same check. Names are
// resolved by the guard's own lookup, installed on the agents of the clients, so
// the address that was checked is the address connected to: a DNS answer that
// changes later (rebinding) is checked again on the next connection. Which ranges
// are denied is the caller's policy (the controller's tenancy rules); the engine
// only enforces it.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import type { Agent as HttpAgent, ClientRequestArgs } from 'node:http';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import type { Duplex } from 'node:stream';
import { JobError } from './errors.js';

export interface DeniedRange {
  /** CIDR ("169.254.0.0/16", "fe80::/10") or one address. */
  range: string;
  /** What lives there, for the refusal message ("link-local: cloud metadata services"). */
  why: string;
}

export type Resolver = (
  hostname: string,
  options: LookupOptions & { all: true },
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

export interface AddressGuardOptions {
  deny: DeniedRange[];
  /** Host names the policy vouches for: connected to whatever they resolve to. */
  allowHost?: (hostname: string) => boolean;
  /** Appended to a refusal: how an admin would allow it. */
  advice?: string;
  /** Name resolution (tests inject one); default: the system's (dns.lookup). */
  resolve?: Resolver;
}

/** A connection the guard refused: job-level, a person has to change the endpoint or the policy. */
export class EndpointNotAllowed extends JobError {
  readonly code = 'EndpointNotAllowed';
  constructor(message: string) {
    super('EndpointNotAllowed', message);
    // errorCode() reads the name: the same reason wherever the error surfaces.
    this.name = 'EndpointNotAllowed';
  }
}

/** The 8 groups of an IPv6 address in any valid spelling (WHATWG URL normalises it first). */
function ipv6Groups(address: string): number[] | undefined {
  let host: string;
  try {
    host = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const [head = '', tail] = host.split('::');
  const part = (s: string): number[] => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const left = part(head);
  const right = tail === undefined ? [] : part(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

function ipv4Of(hi: number, lo: number): string {
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}

/**
 * IPv4 addresses an IPv6 address carries, by the transition schemes that make a
 * host reach them: IPv4-mapped, IPv4-compatible, SIIT, NAT64 (well-known and
 * local-use prefix), 6to4 and Teredo (server and client).
 */
export function embeddedIPv4(address: string): string[] {
  const g = ipv6Groups(address);
  if (!g) return [];
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = g;
  const last = ipv4Of(g6, g7);
  const found: string[] = [];
  const zero = (...xs: number[]): boolean => xs.every((x) => x === 0);
  if (zero(g0, g1, g2, g3, g4) && (g5 === 0xffff || g5 === 0)) found.push(last); // ::ffff:a.b.c.d, ::a.b.c.d
  if (zero(g0, g1, g2, g3, g5) && g4 === 0xffff) found.push(last); // ::ffff:0:a.b.c.d (SIIT)
  if (g0 === 0x64 && g1 === 0xff9b && (g2 === 1 || zero(g2, g3, g4, g5))) found.push(last); // NAT64
  if (g0 === 0x2002) found.push(ipv4Of(g1, g2)); // 6to4
  if (g0 === 0x2001 && g1 === 0) found.push(ipv4Of(g2, g3), ipv4Of(g6 ^ 0xffff, g7 ^ 0xffff)); // Teredo
  return found;
}

export class AddressGuard {
  private readonly ranges: { list: BlockList; why: string }[];

  constructor(private readonly opts: AddressGuardOptions) {
    this.ranges = opts.deny.map(({ range, why }) => {
      const [address = '', bits] = range.split('/');
      const family = isIP(address);
      if (family === 0) throw new Error(`denied address range "${range}" is not an IP address or CIDR`);
      const type = family === 6 ? 'ipv6' : 'ipv4';
      const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32))
        throw new Error(`denied address range "${range}" has a bad prefix length`);
      const list = new BlockList();
      list.addSubnet(address, prefix, type);
      return { list, why };
    });
  }

  /** Why `address` (an IP address) must not be connected to, or undefined when it may. */
  refusal(address: string): string | undefined {
    const family = isIP(address);
    if (family === 0) return undefined;
    // The embedded IPv4 first: the message then says where the connection would really go.
    const candidates = family === 6 ? [...embeddedIPv4(address), address] : [address];
    for (const candidate of candidates) {
      const type = isIP(candidate) === 6 ? 'ipv6' : 'ipv4';
      const hit = this.ranges.find((r) => r.list.check(candidate, type));
      if (hit) return candidate === address ? `${address} is ${hit.why}` : `${address} is ${candidate}, ${hit.why}`;
    }
    return undefined;
  }

  /** Why a URL's host (a name, or an IP literal as WHATWG URL normalises it) is refused without resolving it. */
  hostRefusal(hostname: string): string | undefined {
    const bare = hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
    if (this.opts.allowHost?.(isIP(bare) === 6 ? `[${bare}]` : bare)) return undefined;
    return this.refusal(bare);
  }

  private error(hostname: string, why: string): EndpointNotAllowed {
    const host = isIP(hostname) ? '' : `"${hostname}" resolves to a denied address: `;
    const advice = this.opts.advice ? `; ${this.opts.advice}` : '';
    return new EndpointNotAllowed(`not connecting to the endpoint: ${host}${why}${advice}`);
  }

  /** A net lookup that resolves with the guard's resolver and refuses a name with any denied address. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    const resolve: Resolver = this.opts.resolve ?? ((h, o, cb) => dnsLookup(h, o, cb));
    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      const allowed = this.opts.allowHost?.(hostname.toLowerCase()) ?? false;
      const why = allowed ? undefined : addresses.map((a) => this.refusal(a.address)).find((r) => r !== undefined);
      if (why) return callback(this.error(hostname, why), '');
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '');
      callback(null, first.address, first.family);
    });
  };

  /**
   * Makes every connection of `agent` pass the guard: names through the guard's
   * lookup, IP literals (which never reach a lookup) checked before the socket opens.
   */
  protect<A extends HttpAgent>(agent: A): A {
    const connect = agent.createConnection.bind(agent);
    agent.createConnection = (options: ClientRequestArgs, callback?: (err: Error | null, s: Duplex) => void) => {
      const host = (options.host ?? options.hostname ?? 'localhost').replace(/^\[(.*)\]$/, '$1');
      const why = isIP(host) ? this.hostRefusal(host) : undefined;
      if (why) {
        callback?.(this.error(host, why), undefined as unknown as Duplex);
        return undefined;
      }
      return connect({ ...options, lookup: this.lookup }, callback);
    };
    return agent;
  }
}

let processGuard: AddressGuard | undefined;

/**
 * The guard of every client this process makes unless one is given (the operator
 * sets its tenancy policy here once at start; the CLI sets none).
 */
export function setProcessAddressGuard(guard: AddressGuard | undefined): void {
  processGuard = guard;
}

export function processAddressGuard(): AddressGuard | undefined {
  return processGuard;
}
