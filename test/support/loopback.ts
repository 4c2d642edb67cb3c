/** Plumbing shared by the loopback stand-ins for AWS endpoints (SSM, Logs, S3, CloudFormation). */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/**
 * Starts an HTTP server on a loopback address. The handler is read through `handler()` on each
 * request, so a stand-in can be constructed after the server (it needs the bound address).
 */
export async function listenLoopback(
  handler: () => (request: IncomingMessage, response: ServerResponse) => Promise<void>,
  port = 0,
  host = '127.0.0.1',
): Promise<Server> {
  const server = createServer((request, response) => void handler()(request, response));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

/** An answer in the AWS JSON protocol (`application/x-amz-json-1.1`). */
export function replyAwsJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
  });
  response.end(text);
}

/**
 * The environment a user's shell would have for a process that talks to loopback stand-ins:
 * dummy credentials, no profile or other AWS_* settings of this machine, and each service's
 * endpoint (`AWS_ENDPOINT_URL_<SERVICE>`, which the SDK reads) pointing at its stand-in.
 */
export function loopbackAwsEnvironment(endpoints: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_') && !name.startsWith('VITEST') && name !== 'NODE_OPTIONS'),
  );
  return {
    ...inherited,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    ...Object.fromEntries(Object.entries(endpoints).map(([service, url]) => [`AWS_ENDPOINT_URL_${service}`, url])),
  };
}
