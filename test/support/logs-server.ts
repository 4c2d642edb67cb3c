/**
 * A loopback stand-in for CloudWatch Logs that speaks its JSON protocol (awsJson1_1,
 * `X-Amz-Target: Logs_20140328.<Operation>`) well enough for the real AWS SDK v3:
 * DescribeLogStreams and GetLogEvents. The loopback SSM endpoint writes a command's output
 * into it while the script runs (`CommandOutputSink`), as SSM Agent does when the command is
 * sent with `CloudWatchOutputConfig`: one stream per step and output, one event per line.
 */
import { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CommandOutputSink } from './ssm-server.js';
import { listenLoopback, replyAwsJson } from './loopback.js';

interface LogEvent {
  readonly timestamp: number;
  readonly message: string;
  readonly ingestionTime: number;
}

interface LogStream {
  readonly createdAt: number;
  readonly events: LogEvent[];
  /** The part of the output after its last newline, not yet an event. */
  pending: string;
}

class LogsError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export interface LoopbackLogsOptions {
  /** The log groups that exist; writing to or reading from another one fails as on AWS. */
  readonly logGroups: readonly string[];
  /** @default 0 (any free port) */
  readonly port?: number;
}

export class LoopbackLogs implements CommandOutputSink {
  /** `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`. */
  readonly url: string;
  /** Every request's operation name, in order. */
  readonly operations: string[] = [];
  private readonly groups = new Map<string, Map<string, LogStream>>();
  private denied: { type: string; message: string } | undefined;

  private constructor(private readonly server: Server, options: LoopbackLogsOptions) {
    const address = server.address() as AddressInfo;
    this.url = `http://${address.address}:${address.port}`;
    for (const group of options.logGroups) this.groups.set(group, new Map());
  }

  static async start(options: LoopbackLogsOptions): Promise<LoopbackLogs> {
    let logs: LoopbackLogs | undefined;
    const server = await listenLoopback(() => (request, response) => logs!.handle(request, response), options.port ?? 0);
    logs = new LoopbackLogs(server, options);
    return logs;
  }

  /** Answers every request with this error until `allow()` (e.g. the caller lacks logs:GetLogEvents). */
  deny(type: string, message: string): void {
    this.denied = { type, message };
  }

  allow(): void {
    this.denied = undefined;
  }

  write(logGroupName: string, logStreamName: string, text: string): void {
    const stream = this.stream(logGroupName, logStreamName);
    if (stream === undefined) return;
    const lines = (stream.pending + text).split('\n');
    stream.pending = lines.pop()!;
    const now = Date.now();
    for (const line of lines) stream.events.push({ timestamp: now, message: line, ingestionTime: now });
  }

  end(logGroupName: string, logStreamName: string): void {
    const stream = this.stream(logGroupName, logStreamName);
    if (stream === undefined || stream.pending === '') return;
    const now = Date.now();
    stream.events.push({ timestamp: now, message: stream.pending, ingestionTime: now });
    stream.pending = '';
  }

  /** Every message of a stream so far (for assertions). */
  messages(logGroupName: string, logStreamName: string): string[] {
    return this.groups.get(logGroupName)?.get(logStreamName)?.events.map((event) => event.message) ?? [];
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The stream, created on first write as SSM Agent creates it; undefined when the group does not exist. */
  private stream(logGroupName: string, logStreamName: string): LogStream | undefined {
    const group = this.groups.get(logGroupName);
    if (group === undefined) return undefined;
    let stream = group.get(logStreamName);
    if (stream === undefined) {
      stream = { createdAt: Date.now(), events: [], pending: '' };
      group.set(logStreamName, stream);
    }
    return stream;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const target = String(request.headers['x-amz-target'] ?? '');
    const operation = target.startsWith('Logs_20140328.') ? target.slice('Logs_20140328.'.length) : target;
    this.operations.push(operation);
    try {
      if (!/^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[a-z0-9-]+\/logs\/aws4_request/.test(String(request.headers.authorization ?? ''))) {
        throw new LogsError('MissingAuthenticationTokenException', 'Request is missing a SigV4 Authorization header for logs');
      }
      if (this.denied !== undefined) throw new LogsError(this.denied.type, this.denied.message);
      const input = chunks.length === 0 ? {} : (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
      replyAwsJson(response, 200, this.dispatch(operation, input));
    } catch (error) {
      if (error instanceof LogsError) replyAwsJson(response, 400, { __type: error.type, message: error.message });
      else replyAwsJson(response, 500, { __type: 'ServiceUnavailableException', message: String(error) });
    }
  }

  private dispatch(operation: string, input: Record<string, unknown>): unknown {
    const group = this.groups.get(String(input.logGroupName ?? ''));
    if (operation !== 'DescribeLogStreams' && operation !== 'GetLogEvents') {
      throw new LogsError('UnknownOperationException', `operation ${operation} is not supported by the loopback server`);
    }
    if (group === undefined) throw new LogsError('ResourceNotFoundException', 'The specified log group does not exist.');
    if (operation === 'DescribeLogStreams') {
      const prefix = String(input.logStreamNamePrefix ?? '');
      return {
        logStreams: [...group.entries()]
          .filter(([name]) => name.startsWith(prefix))
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([name, stream]) => ({ logStreamName: name, creationTime: stream.createdAt, storedBytes: 0 })),
      };
    }
    const stream = group.get(String(input.logStreamName ?? ''));
    if (stream === undefined) throw new LogsError('ResourceNotFoundException', 'The specified log stream does not exist.');
    // Tokens are positions: f/N continues after the first N events. The same token comes back
    // when nothing new has arrived, as on AWS.
    const token = typeof input.nextToken === 'string' ? input.nextToken : 'f/0';
    const from = Number(/^f\/(\d+)$/.exec(token)?.[1] ?? 0);
    const limit = Math.min(Number(input.limit ?? 10_000), 10_000);
    const events = stream.events.slice(from, from + limit);
    return {
      events,
      nextForwardToken: `f/${from + events.length}`,
      nextBackwardToken: `b/${from}`,
    };
  }
}

