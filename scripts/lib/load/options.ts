/**
 * The options of a run with their defaults applied and checked, and the target they name: host,
 * port and the three paths the request mix uses.
 */
import type { LoadOptions, RequestKind, ResolvedLoadOptions } from './types.js';

const DEFAULTS: Omit<ResolvedLoadOptions, 'baseUrl'> = {
  keepAliveConnections: 64,
  newConnectionWorkers: 4,
  slowRequestEvery: 50,
  slowMs: 1000,
  postEvery: 3,
  thinkMs: 0,
  requestTimeoutMs: 30_000,
  resend: true,
  maxSamples: 1_000_000,
};

const WHOLE_NUMBER_OPTIONS = [
  'keepAliveConnections',
  'newConnectionWorkers',
  'slowRequestEvery',
  'slowMs',
  'postEvery',
  'thinkMs',
  'requestTimeoutMs',
  'maxSamples',
] as const;

/** The options with every default applied; throws a RangeError naming a bad value. */
export function resolveOptions(given: LoadOptions): ResolvedLoadOptions {
  const resolved: ResolvedLoadOptions = { ...DEFAULTS, baseUrl: given.baseUrl };
  for (const [name, value] of Object.entries(given) as [keyof LoadOptions, unknown][]) {
    if (value !== undefined) (resolved as unknown as Record<string, unknown>)[name] = value;
  }
  for (const name of WHOLE_NUMBER_OPTIONS) requireNonNegativeInteger(name, resolved[name]);
  if (resolved.requestTimeoutMs === 0) throw new RangeError('startLoad: requestTimeoutMs must be > 0');
  if (resolved.keepAliveConnections + resolved.newConnectionWorkers === 0) {
    throw new RangeError('startLoad: no workers (keepAliveConnections and newConnectionWorkers are 0)');
  }
  return resolved;
}

function requireNonNegativeInteger(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0 || Math.floor(value) !== value) {
    throw new RangeError(`startLoad: ${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}

/** Where the requests go: `baseUrl` taken apart, with the path of each kind of request. */
export interface LoadTarget {
  readonly host: string;
  readonly port: number;
  readonly paths: Readonly<Record<RequestKind, string>>;
}

/** The target of `options.baseUrl` (only `http:`; a path prefix is kept). */
export function resolveTarget(options: ResolvedLoadOptions): LoadTarget {
  const url = new URL(options.baseUrl);
  if (url.protocol !== 'http:') throw new RangeError(`startLoad: only http: URLs, got ${options.baseUrl}`);
  const prefix = url.pathname.replace(/\/+$/, '');
  return {
    // An IPv6 literal is bracketed in a URL, not in a socket address.
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : 80,
    paths: {
      get: `${prefix}/`,
      post: `${prefix}/echo`,
      slow: `${prefix}/slow?ms=${options.slowMs}`,
    },
  };
}
