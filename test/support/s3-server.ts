/**
 * A loopback stand-in for S3 (REST, path-style: `/BUCKET/KEY`) well enough for the real AWS SDK
 * v3's PutObject, HeadObject, GetObject and PutObjectTagging. PutObject checks
 * `x-amz-checksum-sha256` against the bytes received, as S3 does (BadDigest), and takes the
 * object's tags from `x-amz-tagging` (an upload replaces them, as in S3). An unsigned GET also returns the object: it is
 * how the test host's stand-in `aws` command (test/support/bin/aws) reads it, in place of the
 * instance role.
 */
import { createHash, randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenLoopback } from './loopback.js';

export interface StoredObject {
  readonly body: Buffer;
  readonly contentType: string;
  readonly sha256Base64: string;
  readonly storedAt: Date;
  /** The object's tags, as PutObject's `x-amz-tagging` or PutObjectTagging last set them. */
  tags: Record<string, string>;
}

export interface LoopbackS3Options {
  /** The buckets that exist. */
  readonly buckets: readonly string[];
  /** @default 0 (any free port) */
  readonly port?: number;
}

export class LoopbackS3 {
  /** `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_S3`. */
  readonly url: string;
  /** Every request as `METHOD /bucket/key`, in order. */
  readonly requests: string[] = [];
  private readonly buckets = new Map<string, Map<string, StoredObject>>();

  private constructor(private readonly server: Server, options: LoopbackS3Options) {
    const address = server.address() as AddressInfo;
    this.url = `http://${address.address}:${address.port}`;
    for (const bucket of options.buckets) this.buckets.set(bucket, new Map());
  }

  static async start(options: LoopbackS3Options): Promise<LoopbackS3> {
    let s3: LoopbackS3 | undefined;
    const server = await listenLoopback(() => (request, response) => s3!.handle(request, response), options.port ?? 0);
    s3 = new LoopbackS3(server, options);
    return s3;
  }

  object(bucket: string, key: string): StoredObject | undefined {
    return this.buckets.get(bucket)?.get(key);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const url = new URL(request.url ?? '/', 'http://loopback');
    const [, bucketName = '', ...keyParts] = url.pathname.split('/');
    const key = decodeURIComponent(keyParts.join('/'));
    const method = request.method ?? 'GET';
    const tagging = url.searchParams.has('tagging');
    this.requests.push(`${method} /${bucketName}/${key}${tagging ? '?tagging' : ''}`);
    const signed = /^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[a-z0-9-]+\/s3\/aws4_request/.test(String(request.headers.authorization ?? ''));
    if (!signed && method !== 'GET') return replyError(response, 403, 'AccessDenied', 'Request is not signed', method);
    const bucket = this.buckets.get(bucketName);
    if (bucket === undefined) return replyError(response, 404, 'NoSuchBucket', `The specified bucket ${bucketName} does not exist`, method);

    if (method === 'PUT' && tagging) {
      const object = bucket.get(key);
      if (object === undefined) return replyError(response, 404, 'NoSuchKey', 'The specified key does not exist.', method);
      const xml = Buffer.concat(chunks).toString('utf8');
      object.tags = Object.fromEntries([...xml.matchAll(/<Tag>\s*<Key>([^<]*)<\/Key>\s*<Value>([^<]*)<\/Value>\s*<\/Tag>/g)].map((m) => [m[1]!, m[2]!]));
      response.writeHead(200, { 'x-amz-request-id': randomUUID(), 'content-length': 0 });
      return void response.end();
    }
    if (method === 'PUT') {
      const body = decodeBody(request, Buffer.concat(chunks));
      const sha256Base64 = createHash('sha256').update(body).digest('base64');
      const claimed = request.headers['x-amz-checksum-sha256'];
      if (typeof claimed === 'string' && claimed !== sha256Base64) {
        return replyError(response, 400, 'BadDigest', 'The SHA256 you specified did not match the calculated checksum.', method);
      }
      const tags = Object.fromEntries(new URLSearchParams(String(request.headers['x-amz-tagging'] ?? '')));
      bucket.set(key, { body, contentType: String(request.headers['content-type'] ?? 'binary/octet-stream'), sha256Base64, storedAt: new Date(), tags });
      response.writeHead(200, { etag: etag(body), 'x-amz-checksum-sha256': sha256Base64, 'x-amz-request-id': randomUUID(), 'content-length': 0 });
      return void response.end();
    }
    const object = bucket.get(key);
    if (object === undefined) return replyError(response, 404, 'NoSuchKey', 'The specified key does not exist.', method);
    if (method === 'HEAD' || method === 'GET') {
      response.writeHead(200, {
        'content-length': object.body.length,
        'content-type': object.contentType,
        etag: etag(object.body),
        'last-modified': object.storedAt.toUTCString(),
        'x-amz-request-id': randomUUID(),
      });
      return void response.end(method === 'GET' ? object.body : undefined);
    }
    replyError(response, 405, 'MethodNotAllowed', `${method} is not supported by the loopback server`, method);
  }
}

/**
 * The object's bytes. A streamed upload arrives `aws-chunked` (`SIZE;...\r\nDATA\r\n`, ending with
 * a zero-size chunk and trailers); a buffered one as is.
 */
function decodeBody(request: IncomingMessage, raw: Buffer): Buffer {
  if (!String(request.headers['content-encoding'] ?? '').includes('aws-chunked')) return raw;
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = raw.indexOf('\r\n', at);
    const size = parseInt(raw.subarray(at, lineEnd).toString('latin1').split(';')[0]!, 16);
    if (!(size > 0)) return Buffer.concat(parts);
    parts.push(raw.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

function etag(body: Buffer): string {
  return `"${createHash('md5').update(body).digest('hex')}"`;
}

function replyError(response: ServerResponse, status: number, code: string, message: string, method: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><RequestId>${randomUUID()}</RequestId></Error>`;
  response.writeHead(status, { 'content-type': 'application/xml', 'content-length': method === 'HEAD' ? 0 : Buffer.byteLength(body), 'x-amz-request-id': randomUUID() });
  response.end(method === 'HEAD' ? undefined : body);
}
