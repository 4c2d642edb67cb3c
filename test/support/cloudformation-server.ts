/**
 * A loopback stand-in for CloudFormation that speaks its query protocol (awsQuery: a form-encoded
 * POST with `Action=...`, an XML answer) well enough for the real AWS SDK v3's DescribeStacks.
 * A stack that does not exist is HTTP 400 `ValidationError` "Stack with id NAME does not exist",
 * as CloudFormation answers.
 */
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenLoopback } from './loopback.js';

export interface LoopbackStack {
  readonly outputs: Readonly<Record<string, string>>;
  /** @default CREATE_COMPLETE */
  readonly status?: string;
}

export interface LoopbackCloudFormationOptions {
  /** The stacks, by name. */
  readonly stacks: Readonly<Record<string, LoopbackStack>>;
  /** @default 0 (any free port) */
  readonly port?: number;
}

export class LoopbackCloudFormation {
  /** `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_CLOUDFORMATION`. */
  readonly url: string;
  /** Every request's action, in order. */
  readonly operations: string[] = [];

  private constructor(
    private readonly server: Server,
    private readonly options: LoopbackCloudFormationOptions,
  ) {
    const address = server.address() as AddressInfo;
    this.url = `http://${address.address}:${address.port}`;
  }

  static async start(options: LoopbackCloudFormationOptions): Promise<LoopbackCloudFormation> {
    let cloudFormation: LoopbackCloudFormation | undefined;
    const server = await listenLoopback(() => (request, response) => cloudFormation!.handle(request, response), options.port ?? 0);
    cloudFormation = new LoopbackCloudFormation(server, options);
    return cloudFormation;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const action = form.get('Action') ?? '';
    this.operations.push(action);
    if (!/^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[a-z0-9-]+\/cloudformation\/aws4_request/.test(String(request.headers.authorization ?? ''))) {
      return replyError(response, 403, 'MissingAuthenticationToken', 'Request is missing a SigV4 Authorization header for cloudformation');
    }
    if (action !== 'DescribeStacks') return replyError(response, 400, 'InvalidAction', `${action} is not supported by the loopback server`);
    const name = form.get('StackName') ?? '';
    const stack = this.options.stacks[name];
    if (stack === undefined) return replyError(response, 400, 'ValidationError', `Stack with id ${name} does not exist`);
    const outputs = Object.entries(stack.outputs)
      .map(([key, value]) => `<member><OutputKey>${xml(key)}</OutputKey><OutputValue>${xml(value)}</OutputValue></member>`)
      .join('');
    reply(
      response,
      200,
      `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member>` +
        `<StackName>${xml(name)}</StackName>` +
        `<StackId>arn:aws:cloudformation:us-east-1:111111111111:stack/${xml(name)}/5b6e8c60-0000-0000-0000-000000000000</StackId>` +
        `<CreationTime>2025-01-01T00:00:00.000Z</CreationTime>` +
        `<StackStatus>${xml(stack.status ?? 'CREATE_COMPLETE')}</StackStatus>` +
        `<Outputs>${outputs}</Outputs>` +
        `</member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></DescribeStacksResponse>`,
    );
  }
}

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function replyError(response: ServerResponse, status: number, code: string, message: string): void {
  reply(
    response,
    status,
    `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type>` +
      `<Code>${xml(code)}</Code><Message>${xml(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
  );
}

function reply(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body), 'x-amzn-requestid': randomUUID() });
  response.end(body);
}
