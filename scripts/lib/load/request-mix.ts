/**
 * Which request a worker sends next: every `slowRequestEvery`th is `GET /slow`, every
 * `postEvery`th (of the rest) a `POST /echo` with one of a few random bodies, the others `GET /`.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import type { LoadTarget } from './options.js';
import type { RequestKind, ResolvedLoadOptions } from './types.js';

/** Pre-generated POST bodies: random bytes, reused for every request. */
const ECHO_BODY_COUNT = 8;

/** A POST body and the SHA-256 the `/echo` answer must repeat. */
export interface EchoBody {
  readonly data: Buffer;
  readonly sha256: string;
}

/** One request to send (and, after a reset, to send again). */
export interface RequestSpec {
  readonly kind: RequestKind;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly body?: EchoBody;
}

/** The request mix of one run: `next(n)` is the request for a worker's counter `n`. */
export class RequestMix {
  private readonly echoBodies = makeEchoBodies();

  constructor(
    private readonly options: ResolvedLoadOptions,
    private readonly paths: LoadTarget['paths'],
  ) {}

  next(n: number): RequestSpec {
    const { slowRequestEvery, postEvery } = this.options;
    if (slowRequestEvery > 0 && n % slowRequestEvery === 0) return { kind: 'slow', method: 'GET', path: this.paths.slow };
    if (postEvery > 0 && n % postEvery === 0) {
      return { kind: 'post', method: 'POST', path: this.paths.post, body: this.echoBodies[n % this.echoBodies.length] };
    }
    return { kind: 'get', method: 'GET', path: this.paths.get };
  }
}

/** Random 1–16 KiB bodies with their SHA-256. */
function makeEchoBodies(): EchoBody[] {
  const bodies: EchoBody[] = [];
  for (let i = 0; i < ECHO_BODY_COUNT; i++) {
    const data = randomBytes(randomInt(1024, 16 * 1024 + 1));
    bodies.push({ data, sha256: createHash('sha256').update(data).digest('hex') });
  }
  return bodies;
}
