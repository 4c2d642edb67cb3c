/**
 * A loopback stand-in for AWS Systems Manager that speaks SSM's JSON protocol (awsJson1_1) well
 * enough for the real AWS SDK v3: SendCommand, GetCommandInvocation, ListCommandInvocations and
 * DescribeInstanceInformation. It runs a Command document's `aws:runShellScript` step the way
 * SSM Agent does: the script text as given, run by `sh` (bash, as on Amazon Linux 2023), every
 * parameter as the environment variable `SSM_<name>` (`interpolationType: ENV_VAR`), values
 * checked against `allowedPattern`/`allowedValues` first, output kept to SSM's first 24,000
 * (stdout) and 8,000 (stderr) characters, the step stopped at its execution timeout. A command
 * sent with `CloudWatchOutputConfig` also has its output written, while it runs, to the
 * `cloudWatchOutput` sink (test/support/logs-server.ts), as SSM Agent streams it to CloudWatch Logs.
 *
 * What the protocol looks like on the wire (FIELD-NOTES "CDK, SDK, SSM"): POST / with
 * `X-Amz-Target: AmazonSSM.<Operation>`; timestamps such as `RequestedDateTime` are epoch
 * seconds as numbers, while GetCommandInvocation's `ExecutionStartDateTime` is a string;
 * errors are HTTP 400 with `{"__type": ..., "message": ...}`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listenLoopback, replyAwsJson } from './loopback.js';

/** SSM's limits on the output GetCommandInvocation returns. */
export const SSM_OUTPUT_LIMITS = { stdout: 24_000, stderr: 8_000 } as const;

/** A parameter of a Command document (schema 2.2). */
export interface DocumentParameter {
  readonly type: string;
  readonly default?: string;
  readonly allowedPattern?: string;
  readonly allowedValues?: readonly string[];
  readonly interpolationType?: string;
}

/** The part of a Command document's content this server runs. */
export interface CommandDocumentContent {
  readonly schemaVersion: string;
  readonly parameters?: Readonly<Record<string, DocumentParameter>>;
  readonly mainSteps: ReadonlyArray<{
    readonly action: string;
    readonly name: string;
    readonly inputs: { readonly runCommand: readonly unknown[]; readonly timeoutSeconds?: string | number };
  }>;
}

export type PingStatus = 'Online' | 'ConnectionLost' | 'Inactive';

/** Where a command's output goes while it runs, when it was sent with `CloudWatchOutputConfig`. */
export interface CommandOutputSink {
  /** More output of one stream (`COMMAND/INSTANCE/STEP/stdout` or `.../stderr`). */
  write(logGroupName: string, logStreamName: string, text: string): void;
  /** The stream has ended. */
  end(logGroupName: string, logStreamName: string): void;
}

export interface LoopbackSsmOptions {
  /** Host to listen on: loopback only. @default 127.0.0.1 */
  readonly host?: string;
  /** @default 0 (any free port) */
  readonly port?: number;
  /** The documents SendCommand accepts, by name. */
  readonly documents: Readonly<Record<string, CommandDocumentContent>>;
  /**
   * The managed instances and their ping status; an instance not listed is not registered
   * (DescribeInstanceInformation omits it and SendCommand answers InvalidInstanceId).
   */
  readonly instances?: Readonly<Record<string, PingStatus>>;
  /** The agent's environment for every command (PATH, BLUEGREEN_CONF, ...). */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * How long a new invocation stays invisible to GetCommandInvocation (InvocationDoesNotExist),
   * as it does on SSM for a moment after SendCommand. @default 0
   */
  readonly invocationLagMs?: number;
  /**
   * Receives the output of commands sent with `CloudWatchOutputConfig` while they run.
   * @default - such output is kept only for GetCommandInvocation
   */
  readonly cloudWatchOutput?: CommandOutputSink;
}

export type InvocationStatus = 'Pending' | 'InProgress' | 'Delayed' | 'Success' | 'Cancelled' | 'TimedOut' | 'Failed' | 'Cancelling';

/** One command on one instance, as this server tracks it. */
export interface Invocation {
  readonly commandId: string;
  readonly instanceId: string;
  readonly documentName: string;
  readonly parameters: Readonly<Record<string, string>>;
  readonly comment: string;
  readonly requestedAt: Date;
  readonly deliveryTimeoutSeconds: number;
  /** The `CloudWatchOutputConfig` log group, when output goes to CloudWatch Logs. */
  readonly cloudWatchLogGroupName?: string;
  status: InvocationStatus;
  statusDetails: string;
  responseCode: number;
  startedAt?: Date;
  endedAt?: Date;
  stdout: string;
  stderr: string;
}

class SsmError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/** A running loopback SSM endpoint. */
export class LoopbackSsm {
  /** `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_SSM`. */
  readonly url: string;
  /** Every invocation, oldest first. */
  readonly invocations: Invocation[] = [];
  /** Every request's operation name, in order. */
  readonly operations: string[] = [];

  private readonly pingStatus = new Map<string, PingStatus>();
  private readonly running = new Map<string, ChildProcess>();
  private readonly scriptDir = mkdtempSync(join(tmpdir(), 'loopback-ssm-'));
  private readonly injectedErrors: Array<{ operation: string; type: string; message: string }> = [];
  private executionTimeoutOverride: number | undefined;

  private constructor(
    private readonly server: Server,
    private readonly options: LoopbackSsmOptions,
  ) {
    const address = server.address() as AddressInfo;
    this.url = `http://${address.address}:${address.port}`;
    for (const [id, status] of Object.entries(options.instances ?? {})) this.pingStatus.set(id, status);
  }

  static async start(options: LoopbackSsmOptions): Promise<LoopbackSsm> {
    for (const [name, document] of Object.entries(options.documents)) scriptOf(name, document);
    let ssm: LoopbackSsm | undefined;
    const server = await listenLoopback(() => (request, response) => ssm!.handle(request, response), options.port ?? 0, options.host);
    ssm = new LoopbackSsm(server, options);
    return ssm;
  }

  /** Registers the instance (or changes its ping status); pending commands start once it is Online. */
  setPingStatus(instanceId: string, status: PingStatus): void {
    this.pingStatus.set(instanceId, status);
    if (status === 'Online') {
      for (const invocation of this.invocations) {
        if (invocation.instanceId === instanceId && (invocation.status === 'Pending' || invocation.status === 'Delayed')) this.run(invocation);
      }
    }
  }

  /** Forgets the instance: SSM no longer lists it. */
  deregister(instanceId: string): void {
    this.pingStatus.delete(instanceId);
  }

  /** Makes the next call to `operation` fail with `type` (e.g. a throttling or IAM error). */
  failNext(operation: string, type: string, message: string): void {
    this.injectedErrors.push({ operation, type, message });
  }

  /**
   * Stops steps after this many seconds instead of the document's own `timeoutSeconds`, so that
   * a test can see an execution time out without waiting half an hour. `undefined` restores it.
   */
  overrideExecutionTimeout(seconds: number | undefined): void {
    this.executionTimeoutOverride = seconds;
  }

  /** Resolves once no command runs or is about to start on an Online instance. */
  async idle(): Promise<void> {
    const busy = () =>
      this.running.size > 0 ||
      this.invocations.some((entry) => entry.status === 'Pending' && this.pingStatus.get(entry.instanceId) === 'Online');
    while (busy()) await new Promise((resolve) => setTimeout(resolve, 50));
  }

  async close(): Promise<void> {
    for (const child of this.running.values()) killGroup(child);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.scriptDir, { recursive: true, force: true });
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const target = String(request.headers['x-amz-target'] ?? '');
    const operation = target.startsWith('AmazonSSM.') ? target.slice('AmazonSSM.'.length) : target;
    this.operations.push(operation);
    try {
      if (request.method !== 'POST') throw new SsmError('UnknownOperationException', `${request.method} is not POST`);
      if (!/^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[a-z0-9-]+\/ssm\/aws4_request/.test(String(request.headers.authorization ?? ''))) {
        throw new SsmError('MissingAuthenticationTokenException', 'Request is missing a SigV4 Authorization header for ssm');
      }
      const injected = this.injectedErrors.findIndex((error) => error.operation === operation);
      if (injected >= 0) {
        const [error] = this.injectedErrors.splice(injected, 1);
        throw new SsmError(error!.type, error!.message);
      }
      const input = chunks.length === 0 ? {} : (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
      const output = this.dispatch(operation, input);
      replyAwsJson(response, 200, output);
    } catch (error) {
      if (error instanceof SsmError) {
        replyAwsJson(response, 400, { __type: error.type, message: error.message });
      } else {
        replyAwsJson(response, 500, { __type: 'InternalServerError', message: String(error) });
      }
    }
  }

  private dispatch(operation: string, input: Record<string, unknown>): unknown {
    switch (operation) {
      case 'SendCommand':
        return this.sendCommand(input);
      case 'GetCommandInvocation':
        return this.getCommandInvocation(input);
      case 'ListCommandInvocations':
        return this.listCommandInvocations(input);
      case 'DescribeInstanceInformation':
        return this.describeInstanceInformation(input);
      default:
        throw new SsmError('UnknownOperationException', `operation ${operation} is not supported by the loopback server`);
    }
  }

  private sendCommand(input: Record<string, unknown>): unknown {
    const documentName = String(input.DocumentName ?? '');
    const document = this.options.documents[documentName];
    if (document === undefined) throw new SsmError('InvalidDocument', `Document ${documentName} does not exist in your account`);
    const instanceIds = (input.InstanceIds ?? []) as string[];
    if (instanceIds.length === 0) throw new SsmError('ValidationException', 'Targets or InstanceIds must be specified');
    const unknown = instanceIds.filter((id) => !this.pingStatus.has(id));
    if (unknown.length > 0) {
      throw new SsmError('InvalidInstanceId', `Instances [[${unknown.join(', ')}]] not in a valid state for account 111111111111`);
    }
    const timeoutSeconds = input.TimeoutSeconds === undefined ? 3600 : Number(input.TimeoutSeconds);
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 30 || timeoutSeconds > 2_592_000) {
      throw new SsmError('ValidationException', `1 validation error detected: Value '${input.TimeoutSeconds}' at 'timeoutSeconds' failed to satisfy constraint`);
    }
    const parameters = resolveParameters(document, (input.Parameters ?? {}) as Record<string, unknown>);
    const cloudWatch = (input.CloudWatchOutputConfig ?? {}) as { CloudWatchOutputEnabled?: boolean; CloudWatchLogGroupName?: string };
    // SSM's default group is aws/ssm/DOCUMENT.
    const cloudWatchLogGroupName = cloudWatch.CloudWatchOutputEnabled === true ? (cloudWatch.CloudWatchLogGroupName ?? `aws/ssm/${documentName}`) : undefined;
    const commandId = randomUUID();
    const requestedAt = new Date();
    for (const instanceId of instanceIds) {
      const invocation: Invocation = {
        commandId,
        instanceId,
        documentName,
        parameters,
        comment: String(input.Comment ?? ''),
        requestedAt,
        deliveryTimeoutSeconds: timeoutSeconds,
        ...(cloudWatchLogGroupName === undefined ? {} : { cloudWatchLogGroupName }),
        status: 'Pending',
        statusDetails: 'Pending',
        responseCode: -1,
        stdout: '',
        stderr: '',
      };
      this.invocations.push(invocation);
      if (this.pingStatus.get(instanceId) === 'Online') {
        setImmediate(() => this.run(invocation));
      } else {
        invocation.status = 'Delayed';
        invocation.statusDetails = 'Delayed';
        setTimeout(() => this.expireDelivery(invocation), timeoutSeconds * 1000).unref();
      }
    }
    return {
      Command: {
        CommandId: commandId,
        DocumentName: documentName,
        DocumentVersion: String(input.DocumentVersion ?? '$DEFAULT'),
        Comment: String(input.Comment ?? ''),
        ExpiresAfter: epochSeconds(new Date(requestedAt.getTime() + timeoutSeconds * 1000)),
        Parameters: Object.fromEntries(Object.entries(parameters).map(([name, value]) => [name, [value]])),
        InstanceIds: instanceIds,
        RequestedDateTime: epochSeconds(requestedAt),
        Status: 'Pending',
        StatusDetails: 'Pending',
        TimeoutSeconds: timeoutSeconds,
        TargetCount: instanceIds.length,
        CompletedCount: 0,
        ErrorCount: 0,
        DeliveryTimedOutCount: 0,
      },
    };
  }

  private getCommandInvocation(input: Record<string, unknown>): unknown {
    const invocation = this.invocations.find((entry) => entry.commandId === input.CommandId && entry.instanceId === input.InstanceId);
    const lag = this.options.invocationLagMs ?? 0;
    if (invocation === undefined || Date.now() - invocation.requestedAt.getTime() < lag) {
      throw new SsmError('InvocationDoesNotExist', '');
    }
    const finished = invocation.endedAt !== undefined;
    return {
      CommandId: invocation.commandId,
      InstanceId: invocation.instanceId,
      Comment: invocation.comment,
      DocumentName: invocation.documentName,
      DocumentVersion: '1',
      PluginName: this.options.documents[invocation.documentName]!.mainSteps[0]!.name,
      ResponseCode: invocation.responseCode,
      ExecutionStartDateTime: invocation.startedAt?.toISOString() ?? '',
      ExecutionElapsedTime: elapsed(invocation),
      ExecutionEndDateTime: invocation.endedAt?.toISOString() ?? '',
      Status: invocation.status,
      StatusDetails: invocation.statusDetails,
      // SSM returns output only once the invocation has ended.
      StandardOutputContent: finished ? invocation.stdout.slice(0, SSM_OUTPUT_LIMITS.stdout) : '',
      StandardOutputUrl: '',
      StandardErrorContent: finished ? invocation.stderr.slice(0, SSM_OUTPUT_LIMITS.stderr) : '',
      StandardErrorUrl: '',
      CloudWatchOutputConfig: { CloudWatchLogGroupName: invocation.cloudWatchLogGroupName ?? '', CloudWatchOutputEnabled: invocation.cloudWatchLogGroupName !== undefined },
    };
  }

  private listCommandInvocations(input: Record<string, unknown>): unknown {
    const lag = this.options.invocationLagMs ?? 0;
    const matching = this.invocations.filter(
      (entry) =>
        (input.CommandId === undefined || entry.commandId === input.CommandId) &&
        (input.InstanceId === undefined || entry.instanceId === input.InstanceId) &&
        Date.now() - entry.requestedAt.getTime() >= lag,
    );
    return {
      CommandInvocations: matching.map((entry) => ({
        CommandId: entry.commandId,
        InstanceId: entry.instanceId,
        InstanceName: '',
        Comment: entry.comment,
        DocumentName: entry.documentName,
        DocumentVersion: '1',
        RequestedDateTime: epochSeconds(entry.requestedAt),
        Status: entry.status,
        StatusDetails: entry.statusDetails,
        TraceOutput: '',
        StandardOutputUrl: '',
        StandardErrorUrl: '',
        CommandPlugins: [],
      })),
    };
  }

  private describeInstanceInformation(input: Record<string, unknown>): unknown {
    const filters = (input.Filters ?? []) as Array<{ Key: string; Values: string[] }>;
    const legacy = (input.InstanceInformationFilterList ?? []) as Array<{ key: string; valueSet: string[] }>;
    const wanted = [
      ...filters.filter((filter) => filter.Key === 'InstanceIds').flatMap((filter) => filter.Values),
      ...legacy.filter((filter) => filter.key === 'InstanceIds').flatMap((filter) => filter.valueSet),
    ];
    const listed = [...this.pingStatus.entries()].filter(([id]) => wanted.length === 0 || wanted.includes(id));
    return {
      InstanceInformationList: listed.map(([id, status]) => ({
        InstanceId: id,
        PingStatus: status,
        LastPingDateTime: epochSeconds(new Date()),
        AgentVersion: '3.3.2746.0',
        IsLatestVersion: true,
        PlatformType: 'Linux',
        PlatformName: 'Amazon Linux',
        PlatformVersion: '2023',
        ResourceType: 'EC2Instance',
        ComputerName: 'loopback.local',
        IPAddress: '127.0.0.1',
      })),
    };
  }

  private expireDelivery(invocation: Invocation): void {
    if (invocation.status !== 'Delayed' && invocation.status !== 'Pending') return;
    invocation.status = 'TimedOut';
    invocation.statusDetails = 'DeliveryTimedOut';
    invocation.endedAt = new Date();
  }

  /** Runs the document's step for `invocation`, as SSM Agent on the instance would. */
  private run(invocation: Invocation): void {
    if (invocation.status !== 'Pending' && invocation.status !== 'Delayed') return;
    const document = this.options.documents[invocation.documentName]!;
    const step = document.mainSteps[0]!;
    const scriptFile = join(this.scriptDir, `${invocation.commandId}-${invocation.instanceId}.sh`);
    writeFileSync(scriptFile, scriptOf(invocation.documentName, document), { mode: 0o700 });
    const environment = { ...this.options.environment };
    for (const [name, value] of Object.entries(invocation.parameters)) {
      if (document.parameters?.[name]?.interpolationType === 'ENV_VAR') environment[`SSM_${name}`] = value;
    }
    invocation.status = 'InProgress';
    invocation.statusDetails = 'InProgress';
    invocation.startedAt = new Date();
    // Amazon Linux's /bin/sh is bash in POSIX mode; argv0 "sh" makes bash behave the same here.
    const child = spawn('bash', [scriptFile], { argv0: 'sh', env: environment, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.running.set(invocation.commandId + invocation.instanceId, child);
    const sink = invocation.cloudWatchLogGroupName === undefined ? undefined : this.options.cloudWatchOutput;
    const streamName = (output: 'stdout' | 'stderr') => `${invocation.commandId}/${invocation.instanceId}/${step.name}/${output}`;
    child.stdout!.on('data', (data: Buffer) => {
      invocation.stdout += data.toString('utf8');
      sink?.write(invocation.cloudWatchLogGroupName!, streamName('stdout'), data.toString('utf8'));
    });
    child.stderr!.on('data', (data: Buffer) => {
      invocation.stderr += data.toString('utf8');
      sink?.write(invocation.cloudWatchLogGroupName!, streamName('stderr'), data.toString('utf8'));
    });
    const timeoutSeconds = this.executionTimeoutOverride ?? Number(step.inputs.timeoutSeconds ?? 3600);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, timeoutSeconds * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      sink?.end(invocation.cloudWatchLogGroupName!, streamName('stdout'));
      sink?.end(invocation.cloudWatchLogGroupName!, streamName('stderr'));
      this.running.delete(invocation.commandId + invocation.instanceId);
      invocation.endedAt = new Date();
      if (timedOut) {
        invocation.status = 'TimedOut';
        invocation.statusDetails = 'ExecutionTimedOut';
        invocation.responseCode = -1;
      } else {
        invocation.responseCode = code ?? -1;
        invocation.status = code === 0 ? 'Success' : 'Failed';
        invocation.statusDetails = invocation.status;
      }
    });
  }
}

/** The step's script: the `runCommand` lines joined, as SSM Agent writes them to `_script.sh`. */
function scriptOf(name: string, document: CommandDocumentContent): string {
  const step = document.mainSteps[0];
  if (step === undefined || step.action !== 'aws:runShellScript') {
    throw new Error(`document ${name}: the loopback server runs one aws:runShellScript step, got ${step?.action}`);
  }
  const nonText = step.inputs.runCommand.find((line) => typeof line !== 'string');
  if (nonText !== undefined) {
    throw new Error(`document ${name}: runCommand holds a CloudFormation expression (${JSON.stringify(nonText)}); resolve it first`);
  }
  return `${(step.inputs.runCommand as string[]).join('\n')}\n`;
}

/** The parameters with defaults filled in, each value checked as SSM checks it. */
function resolveParameters(document: CommandDocumentContent, given: Record<string, unknown>): Record<string, string> {
  const declared = document.parameters ?? {};
  const undeclared = Object.keys(given).filter((name) => !(name in declared));
  if (undeclared.length > 0) throw new SsmError('InvalidParameters', `Parameters ${JSON.stringify(undeclared)} are not defined in the document`);
  const values: Record<string, string> = {};
  for (const [name, parameter] of Object.entries(declared)) {
    const raw = given[name];
    if (raw !== undefined && (!Array.isArray(raw) || raw.length !== 1 || typeof raw[0] !== 'string')) {
      throw new SsmError('InvalidParameters', `Parameter "${name}" must be a list of one string`);
    }
    const value = raw === undefined ? parameter.default : (raw[0] as string);
    if (value === undefined) throw new SsmError('InvalidParameters', `Parameter "${name}" is required`);
    if (parameter.allowedValues !== undefined && !parameter.allowedValues.includes(value)) {
      throw new SsmError('InvalidParameters', `Parameter "${name}" has a value that is not in allowedValues`);
    }
    if (parameter.allowedPattern !== undefined && !new RegExp(parameter.allowedPattern).test(value)) {
      throw new SsmError('InvalidParameters', `Parameter "${name}" "${value}" failed to satisfy constraint: Member must satisfy regular expression pattern: ${parameter.allowedPattern}`);
    }
    values[name] = value;
  }
  return values;
}


/** SSM's JSON protocol sends timestamps as epoch seconds (numbers, with a fraction). */
function epochSeconds(date: Date): number {
  return date.getTime() / 1000;
}

function elapsed(invocation: Invocation): string {
  if (invocation.startedAt === undefined) return '';
  const ms = (invocation.endedAt ?? new Date()).getTime() - invocation.startedAt.getTime();
  const seconds = Math.floor(ms / 1000);
  return `PT${seconds}.${String(ms % 1000).padStart(3, '0')}S`;
}

/** SSM Agent stops a timed-out step with its whole process group. */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
