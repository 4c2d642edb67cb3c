/**
 * A loopback stand-in for AWS Systems Manager that speaks SSM's JSON protocol (awsJson1_1) well
 * enough for the real AWS SDK v3: Run Command (SendCommand, ListCommands, GetCommandInvocation,
 * ListCommandInvocations), DescribeInstanceInformation, and String parameters (GetParameter,
 * PutParameter). It runs a Command document's `aws:runShellScript` step the way SSM Agent does:
 * the script text as given, run by `sh` (bash, as on Amazon Linux 2023), every parameter as the
 * environment variable `SSM_<name>` (`interpolationType: ENV_VAR`), values checked against
 * `allowedPattern`/`allowedValues` first, output kept to SSM's first 24,000 (stdout) and 8,000
 * (stderr) characters, the step stopped at its execution timeout. A command sent with
 * `CloudWatchOutputConfig` also has its output written, while it runs, to the `cloudWatchOutput`
 * sink (test/support/logs-server.ts), as SSM Agent streams it to CloudWatch Logs.
 *
 * A fleet, as the Systems Manager User Guide describes it ("Understanding command statuses",
 * "Using targets and rate controls to send commands to a fleet"):
 * - `Targets: [{Key: 'tag:NAME', Values}]` resolve when the command is sent, to every registered
 *   instance with the tag, Online or not (one that is not Online goes Delayed). An instance that
 *   registers later is not a target of that command. No match: the command has no invocations
 *   and ends `Success` with StatusDetails `NoInstancesInTag`.
 * - `MaxConcurrency` (default 50): at most that many invocations run at once, in instance-id
 *   order. The queue sends to one instance first and widens exponentially (1, 2, 4, ...) as
 *   invocations complete, up to MaxConcurrency.
 * - `MaxErrors` (default 0): once more invocations than that ended Failed or ExecutionTimedOut,
 *   no further invocation starts; those not started end `Cancelled` with StatusDetails
 *   `Terminated`. Invocations already running finish. DeliveryTimedOut does not count.
 * - The command's own status follows from its invocations once all ended: Success; Failed (too
 *   many errors); TimedOut (every invocation timed out); otherwise Failed with StatusDetails
 *   `Incomplete`.
 *
 * What the protocol looks like on the wire, as AWS SDK v3 sends and parses it: POST / with
 * `X-Amz-Target: AmazonSSM.<Operation>`; timestamps such as `RequestedDateTime` are epoch
 * seconds as numbers (a string breaks the SDK's parser), while GetCommandInvocation's
 * `ExecutionStartDateTime` is a string; errors are HTTP 400 with `{"__type": ..., "message": ...}`.
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

/**
 * The most SSM Agent reports as a plugin's `Output` (ListCommandInvocations with `Details`):
 * stdout and stderr together, cut with markers (amazon-ssm-agent, iohandler
 * `MaximumPluginOutputSize` and `TruncateOutput`).
 */
export const SSM_PLUGIN_OUTPUT_LIMIT = 2_500;

/** Rate-control defaults of SendCommand (API reference: MaxConcurrency 50, MaxErrors 0). */
export const SSM_RATE_CONTROL_DEFAULTS = { maxConcurrency: '50', maxErrors: '0' } as const;

/** The largest page ListCommandInvocations, ListCommands and DescribeInstanceInformation return. */
const MAX_PAGE_SIZE = 50;

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

export type Tags = Readonly<Record<string, string>>;
export type Environment = Readonly<Record<string, string>>;

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
  /** Tags of the instances in `instances`, by instance id. @default - no tags */
  readonly tags?: Readonly<Record<string, Tags>>;
  /** The agent's environment for every command (PATH, BLUEGREEN_CONF, ...). */
  readonly environment: Environment;
  /**
   * Per instance, variables over `environment` (each host of a fleet has its own
   * BLUEGREEN_CONF). @default - every instance runs with `environment`
   */
  readonly instanceEnvironment?: Readonly<Record<string, Environment>>;
  /** String parameters that exist when the server starts (version 1), by name. @default - none */
  readonly parameters?: Readonly<Record<string, string>>;
  /**
   * How long a new command's invocations stay invisible (GetCommandInvocation answers
   * InvocationDoesNotExist, the lists leave them out, a tag target counts 0 targets), as they
   * do on SSM for a moment after SendCommand. @default 0
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
  /** When the script started on the instance; undefined if it never ran. */
  startedAt?: Date;
  /** When the invocation reached a terminal state (ran to the end, timed out, was terminated). */
  endedAt?: Date;
  stdout: string;
  stderr: string;
}

/** A `Targets` entry of SendCommand. */
export interface CommandTarget {
  readonly Key: string;
  readonly Values: readonly string[];
}

/** One SendCommand, as this server tracks it. */
export interface CommandRecord {
  readonly commandId: string;
  readonly documentName: string;
  readonly parameters: Readonly<Record<string, string>>;
  readonly comment: string;
  readonly requestedAt: Date;
  /** SendCommand's TimeoutSeconds: how long an invocation may wait to be picked up. */
  readonly deliveryTimeoutSeconds: number;
  /** Delivery timeout plus the step's execution timeout ("total timeout"): undelivered ones expire then. */
  readonly expiresAt: Date;
  /** As sent: exactly one of `instanceIds` and `targets` is non-empty. */
  readonly instanceIds: readonly string[];
  readonly targets: readonly CommandTarget[];
  readonly maxConcurrency: string;
  readonly maxErrors: string;
  /** The instances it runs on, resolved when it was sent, in the order they start. */
  readonly targetIds: readonly string[];
  /** `maxConcurrency` and `maxErrors` as numbers of instances. */
  readonly concurrencyLimit: number;
  readonly errorLimit: number;
  readonly cloudWatchLogGroupName?: string;
}

/** The aggregate of a command's invocations, as ListCommands reports it. */
export interface CommandState {
  readonly status: 'Pending' | 'InProgress' | 'Success' | 'Failed' | 'TimedOut' | 'Cancelled';
  readonly statusDetails: string;
  readonly targetCount: number;
  readonly completedCount: number;
  readonly errorCount: number;
  readonly deliveryTimedOutCount: number;
}

/** A String parameter, as this server keeps it. */
export interface StoredParameter {
  readonly value: string;
  readonly version: number;
  readonly lastModifiedAt: Date;
}

interface ManagedInstance {
  pingStatus: PingStatus;
  tags: Tags;
  environment: Environment;
}

class SsmError extends Error {
  constructor(
    readonly type: string,
    message: string,
    /** SSM answers its own errors with 400, its failures with 500. */
    readonly status = 400,
  ) {
    super(message);
  }
}

/** A failure injected into the next call of one operation (`failNext`, `dropNext`, `failNextAfterHandling`, `dropNextAfterHandling`). */
interface InjectedFailure {
  readonly operation: string;
  /** Before the operation runs (nothing happened), or after it ran (its answer is lost). */
  readonly when: 'before' | 'after';
  /** An error answer, or no answer at all: the connection is dropped. */
  readonly answer: { readonly type: string; readonly message: string; readonly status: number } | 'drop';
}

const TERMINAL: ReadonlySet<InvocationStatus> = new Set(['Success', 'Cancelled', 'TimedOut', 'Failed']);

/** A running loopback SSM endpoint. */
export class LoopbackSsm {
  /** `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_SSM`. */
  readonly url: string;
  /** Every invocation, oldest first. */
  readonly invocations: Invocation[] = [];
  /** Every command, oldest first. */
  readonly commands: CommandRecord[] = [];
  /** Every request's operation name, in order. */
  readonly operations: string[] = [];
  /** Every String parameter, by name. */
  readonly parameters = new Map<string, StoredParameter>();

  private readonly instances = new Map<string, ManagedInstance>();
  private readonly running = new Map<string, ChildProcess>();
  private readonly scriptDir = mkdtempSync(join(tmpdir(), 'loopback-ssm-'));
  private readonly injectedFailures: InjectedFailure[] = [];
  private executionTimeoutOverride: number | undefined;

  private constructor(
    private readonly server: Server,
    private readonly options: LoopbackSsmOptions,
  ) {
    const address = server.address() as AddressInfo;
    this.url = `http://${address.address}:${address.port}`;
    for (const [id, status] of Object.entries(options.instances ?? {})) {
      this.instances.set(id, { pingStatus: status, tags: options.tags?.[id] ?? {}, environment: options.instanceEnvironment?.[id] ?? {} });
    }
    for (const [name, value] of Object.entries(options.parameters ?? {})) {
      this.parameters.set(name, { value, version: 1, lastModifiedAt: new Date() });
    }
  }

  static async start(options: LoopbackSsmOptions): Promise<LoopbackSsm> {
    for (const [name, document] of Object.entries(options.documents)) scriptOf(name, document);
    let ssm: LoopbackSsm | undefined;
    const server = await listenLoopback(() => (request, response) => ssm!.handle(request, response), options.port ?? 0, options.host);
    ssm = new LoopbackSsm(server, options);
    return ssm;
  }

  /**
   * Registers an instance as SSM Agent does early in its boot: with its tags (EC2 tags reach SSM
   * with the instance) and, here, the environment its commands run with. An instance that
   * registers after a command was sent by tag is not a target of that command.
   */
  register(instanceId: string, status: PingStatus, tags: Tags = {}, environment: Environment = {}): void {
    this.instances.set(instanceId, { pingStatus: status, tags, environment });
    if (status === 'Online') this.deliverDelayed(instanceId);
  }

  /** Registers the instance (or changes its ping status); Delayed commands start once it is Online. */
  setPingStatus(instanceId: string, status: PingStatus): void {
    const known = this.instances.get(instanceId);
    if (known === undefined) this.instances.set(instanceId, { pingStatus: status, tags: {}, environment: {} });
    else known.pingStatus = status;
    if (status === 'Online') this.deliverDelayed(instanceId);
  }

  /** Forgets the instance: SSM no longer lists it. */
  deregister(instanceId: string): void {
    this.instances.delete(instanceId);
  }

  /**
   * Makes the next call to `operation` fail with `type` before it does anything (e.g. a throttling
   * or IAM error; a `status` of 500 for a failure of SSM's own).
   */
  failNext(operation: string, type: string, message: string, status = 400): void {
    this.injectedFailures.push({ operation, when: 'before', answer: { type, message, status } });
  }

  /**
   * Makes the next call to `operation` do its work (SendCommand creates the command) and then
   * answer an error, as SSM does when it fails after acting: the caller cannot tell that it acted.
   */
  failNextAfterHandling(operation: string, type = 'InternalServerError', message = 'An internal error occurred', status = 500): void {
    this.injectedFailures.push({ operation, when: 'after', answer: { type, message, status } });
  }

  /** Makes the next call to `operation` drop the connection before it does anything. */
  dropNext(operation: string): void {
    this.injectedFailures.push({ operation, when: 'before', answer: 'drop' });
  }

  /** Makes the next call to `operation` do its work and then drop the connection without an answer. */
  dropNextAfterHandling(operation: string): void {
    this.injectedFailures.push({ operation, when: 'after', answer: 'drop' });
  }

  /** Forgets the injected failures no call has met yet. */
  clearInjectedFailures(): void {
    this.injectedFailures.length = 0;
  }

  /** The injected failure for this call of `operation` at `when`, taken off the list. */
  private injectedFailure(operation: string, when: InjectedFailure['when']): InjectedFailure['answer'] | undefined {
    const index = this.injectedFailures.findIndex((failure) => failure.operation === operation && failure.when === when);
    return index < 0 ? undefined : this.injectedFailures.splice(index, 1)[0]!.answer;
  }

  /**
   * Stops steps after this many seconds instead of the document's own `timeoutSeconds`, so that
   * a test can see an execution time out without waiting half an hour. `undefined` restores it.
   */
  overrideExecutionTimeout(seconds: number | undefined): void {
    this.executionTimeoutOverride = seconds;
  }

  /** The command's aggregate state, as ListCommands reports it. */
  commandState(commandId: string): CommandState {
    const command = this.commands.find((entry) => entry.commandId === commandId);
    if (command === undefined) throw new Error(`no command ${commandId}`);
    return this.stateOf(command);
  }

  /**
   * The most invocations (of one command, or of all) whose scripts ran at the same moment,
   * from their start and end times: "never more than MaxConcurrency hosts at once".
   */
  peakConcurrency(commandId?: string): number {
    const edges: Array<{ at: number; delta: number }> = [];
    for (const entry of this.invocations) {
      if ((commandId !== undefined && entry.commandId !== commandId) || entry.startedAt === undefined) continue;
      edges.push({ at: entry.startedAt.getTime(), delta: 1 });
      edges.push({ at: (entry.endedAt ?? new Date(8.64e15)).getTime(), delta: -1 });
    }
    // An end and a start at the same millisecond do not overlap.
    edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
    let now = 0;
    let peak = 0;
    for (const edge of edges) {
      now += edge.delta;
      peak = Math.max(peak, now);
    }
    return peak;
  }

  /** Resolves once no command runs or is about to start on an Online instance. */
  async idle(): Promise<void> {
    const busy = () =>
      this.running.size > 0 ||
      this.invocations.some((entry) => entry.status === 'Pending' && this.instances.get(entry.instanceId)?.pingStatus === 'Online');
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
      const before = this.injectedFailure(operation, 'before');
      if (before === 'drop') return void response.destroy();
      if (before !== undefined) throw new SsmError(before.type, before.message, before.status);
      const input = chunks.length === 0 ? {} : (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
      const output = this.dispatch(operation, input);
      const after = this.injectedFailure(operation, 'after');
      if (after === 'drop') return void response.destroy();
      if (after !== undefined) throw new SsmError(after.type, after.message, after.status);
      replyAwsJson(response, 200, output);
    } catch (error) {
      if (error instanceof SsmError) {
        replyAwsJson(response, error.status, { __type: error.type, message: error.message });
      } else {
        replyAwsJson(response, 500, { __type: 'InternalServerError', message: String(error) });
      }
    }
  }

  private dispatch(operation: string, input: Record<string, unknown>): unknown {
    switch (operation) {
      case 'SendCommand':
        return this.sendCommand(input);
      case 'ListCommands':
        return this.listCommands(input);
      case 'GetCommandInvocation':
        return this.getCommandInvocation(input);
      case 'ListCommandInvocations':
        return this.listCommandInvocations(input);
      case 'DescribeInstanceInformation':
        return this.describeInstanceInformation(input);
      case 'GetParameter':
        return this.getParameter(input);
      case 'PutParameter':
        return this.putParameter(input);
      default:
        throw new SsmError('UnknownOperationException', `operation ${operation} is not supported by the loopback server`);
    }
  }

  private sendCommand(input: Record<string, unknown>): unknown {
    const documentName = String(input.DocumentName ?? '');
    const document = this.options.documents[documentName];
    if (document === undefined) throw new SsmError('InvalidDocument', `Document ${documentName} does not exist in your account`);
    const instanceIds = (input.InstanceIds ?? []) as string[];
    const targets = (input.Targets ?? []) as CommandTarget[];
    if (instanceIds.length === 0 && targets.length === 0) throw new SsmError('ValidationException', 'Targets or InstanceIds must be specified');
    if (instanceIds.length > 0 && targets.length > 0) throw new SsmError('ValidationException', 'Specify InstanceIds or Targets, not both');
    if (instanceIds.length > 50) {
      throw new SsmError('ValidationException', "1 validation error detected: Value at 'instanceIds' failed to satisfy constraint: Member must have length less than or equal to 50");
    }
    const unknown = instanceIds.filter((id) => !this.instances.has(id));
    if (unknown.length > 0) {
      throw new SsmError('InvalidInstanceId', `Instances [[${unknown.join(', ')}]] not in a valid state for account 111111111111`);
    }
    const timeoutSeconds = input.TimeoutSeconds === undefined ? 3600 : Number(input.TimeoutSeconds);
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 30 || timeoutSeconds > 2_592_000) {
      throw new SsmError('ValidationException', `1 validation error detected: Value '${input.TimeoutSeconds}' at 'timeoutSeconds' failed to satisfy constraint`);
    }
    const maxConcurrency = String(input.MaxConcurrency ?? SSM_RATE_CONTROL_DEFAULTS.maxConcurrency);
    const maxErrors = String(input.MaxErrors ?? SSM_RATE_CONTROL_DEFAULTS.maxErrors);
    // The API's own patterns for the two rate controls.
    if (!/^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$/.test(maxConcurrency)) {
      throw new SsmError('ValidationException', `1 validation error detected: Value '${maxConcurrency}' at 'maxConcurrency' failed to satisfy constraint`);
    }
    if (!/^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$/.test(maxErrors)) {
      throw new SsmError('ValidationException', `1 validation error detected: Value '${maxErrors}' at 'maxErrors' failed to satisfy constraint`);
    }
    const targetIds = instanceIds.length > 0 ? [...instanceIds] : this.resolveTargets(targets);
    const parameters = resolveParameters(document, (input.Parameters ?? {}) as Record<string, unknown>);
    const cloudWatch = (input.CloudWatchOutputConfig ?? {}) as { CloudWatchOutputEnabled?: boolean; CloudWatchLogGroupName?: string };
    // SSM's default group is aws/ssm/DOCUMENT.
    const cloudWatchLogGroupName = cloudWatch.CloudWatchOutputEnabled === true ? (cloudWatch.CloudWatchLogGroupName ?? `aws/ssm/${documentName}`) : undefined;
    const requestedAt = new Date();
    const command: CommandRecord = {
      commandId: randomUUID(),
      documentName,
      parameters,
      comment: String(input.Comment ?? ''),
      requestedAt,
      deliveryTimeoutSeconds: timeoutSeconds,
      expiresAt: new Date(requestedAt.getTime() + (timeoutSeconds + this.executionTimeoutSeconds(document)) * 1000),
      instanceIds,
      targets,
      maxConcurrency,
      maxErrors,
      targetIds,
      concurrencyLimit: Math.max(1, countOf(maxConcurrency, targetIds.length)),
      errorLimit: countOf(maxErrors, targetIds.length),
      ...(cloudWatchLogGroupName === undefined ? {} : { cloudWatchLogGroupName }),
    };
    this.commands.push(command);
    for (const instanceId of targetIds) {
      const invocation: Invocation = {
        commandId: command.commandId,
        instanceId,
        documentName,
        parameters,
        comment: command.comment,
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
      // setTimeout holds at most 2^31-1 ms (24.8 days); TimeoutSeconds may be 30 days.
      setTimeout(() => this.expireDelivery(invocation), Math.min(command.expiresAt.getTime() - Date.now(), 2 ** 31 - 1)).unref();
    }
    setImmediate(() => this.pump(command));
    return {
      Command: {
        ...this.describeCommand(command),
        // Targets resolve after SendCommand answers: it counts only the instance ids it was given.
        TargetCount: instanceIds.length,
        Status: 'Pending',
        StatusDetails: 'Pending',
        CompletedCount: 0,
        ErrorCount: 0,
        DeliveryTimedOutCount: 0,
      },
    };
  }

  /** The registered instances a tag target names, in id order (the order they are sent to). */
  private resolveTargets(targets: readonly CommandTarget[]): string[] {
    if (targets.length > 5) throw new SsmError('ValidationException', 'You can specify a maximum of 5 target keys');
    const matchers = targets.map((target) => {
      if (target.Values.length === 0 || target.Values.length > 50) {
        throw new SsmError('ValidationException', `Target ${target.Key} needs 1 to 50 values`);
      }
      if (target.Key.startsWith('tag:')) {
        const tagKey = target.Key.slice('tag:'.length);
        return (instance: ManagedInstance) => instance.tags[tagKey] !== undefined && target.Values.includes(instance.tags[tagKey]!);
      }
      if (target.Key.toLowerCase() === 'instanceids') {
        return (_: ManagedInstance, id: string) => target.Values.includes(id);
      }
      throw new SsmError('ValidationException', `Target key ${target.Key}: the loopback server resolves tag:NAME and InstanceIds targets only`);
    });
    // Every key must match: "the system targets instances that meet all of the criteria".
    return [...this.instances.entries()]
      .filter(([id, instance]) => matchers.every((matches) => matches(instance, id)))
      .map(([id]) => id)
      .sort();
  }

  /** Starts as many of the command's waiting invocations as its rate controls allow, or terminates them. */
  private pump(command: CommandRecord): void {
    const invocations = this.invocationsOf(command);
    const errors = invocations.filter(countsAsError).length;
    // Delayed: sent, but SSM Agent never picked it up, so it has not started either.
    const waiting = invocations.filter((entry) => entry.status === 'Pending' || entry.status === 'Delayed');
    if (errors > command.errorLimit) {
      for (const entry of waiting) {
        entry.status = 'Cancelled';
        entry.statusDetails = 'Terminated';
        entry.endedAt = new Date();
      }
      return;
    }
    const completed = invocations.filter((entry) => TERMINAL.has(entry.status)).length;
    // One first, then twice as many as have completed, up to MaxConcurrency.
    const window = Math.min(command.concurrencyLimit, largestPowerOfTwoAtMost(completed + 1));
    let active = invocations.filter((entry) => entry.status === 'InProgress' || entry.status === 'Delayed').length;
    for (const entry of invocations) {
      if (active >= window) break;
      if (entry.status !== 'Pending') continue;
      active += 1;
      if (this.instances.get(entry.instanceId)?.pingStatus === 'Online') {
        this.run(entry);
      } else {
        entry.status = 'Delayed';
        entry.statusDetails = 'Delayed';
      }
    }
  }

  private invocationsOf(command: CommandRecord): Invocation[] {
    return this.invocations.filter((entry) => entry.commandId === command.commandId);
  }

  private deliverDelayed(instanceId: string): void {
    for (const invocation of this.invocations) {
      if (invocation.instanceId === instanceId && invocation.status === 'Delayed') this.run(invocation);
    }
  }

  private visible(requestedAt: Date): boolean {
    return Date.now() - requestedAt.getTime() >= (this.options.invocationLagMs ?? 0);
  }

  private stateOf(command: CommandRecord): CommandState {
    const resolved = this.visible(command.requestedAt);
    const invocations = resolved ? this.invocationsOf(command) : [];
    const count = (predicate: (entry: Invocation) => boolean) => invocations.filter(predicate).length;
    const completedCount = count((entry) => TERMINAL.has(entry.status));
    const errorCount = count(countsAsError);
    const deliveryTimedOutCount = count((entry) => entry.statusDetails === 'DeliveryTimedOut');
    const counts = { targetCount: invocations.length, completedCount, errorCount, deliveryTimedOutCount };
    if (!resolved) return { status: 'Pending', statusDetails: 'Pending', ...counts, targetCount: command.instanceIds.length };
    if (invocations.length === 0) return { status: 'Success', statusDetails: 'NoInstancesInTag', ...counts };
    if (completedCount < invocations.length) {
      const started = invocations.some((entry) => entry.status !== 'Pending');
      return started ? { status: 'InProgress', statusDetails: 'InProgress', ...counts } : { status: 'Pending', statusDetails: 'Pending', ...counts };
    }
    if (count((entry) => entry.status === 'Success') === invocations.length) return { status: 'Success', statusDetails: 'Success', ...counts };
    if (errorCount > command.errorLimit) {
      const onlyTimeouts = count((entry) => entry.status === 'Failed') === 0;
      return onlyTimeouts ? { status: 'TimedOut', statusDetails: 'ExecutionTimedOut', ...counts } : { status: 'Failed', statusDetails: 'Failed', ...counts };
    }
    if (deliveryTimedOutCount === invocations.length) return { status: 'TimedOut', statusDetails: 'DeliveryTimedOut', ...counts };
    return { status: 'Failed', statusDetails: 'Incomplete', ...counts };
  }

  /** The fields of a Command that do not change while it runs. */
  private describeCommand(command: CommandRecord): Record<string, unknown> {
    return {
      CommandId: command.commandId,
      DocumentName: command.documentName,
      DocumentVersion: '$DEFAULT',
      Comment: command.comment,
      ExpiresAfter: epochSeconds(command.expiresAt),
      Parameters: Object.fromEntries(Object.entries(command.parameters).map(([name, value]) => [name, [value]])),
      InstanceIds: command.instanceIds,
      Targets: command.targets,
      RequestedDateTime: epochSeconds(command.requestedAt),
      MaxConcurrency: command.maxConcurrency,
      MaxErrors: command.maxErrors,
      TimeoutSeconds: command.deliveryTimeoutSeconds,
      CloudWatchOutputConfig: { CloudWatchLogGroupName: command.cloudWatchLogGroupName ?? '', CloudWatchOutputEnabled: command.cloudWatchLogGroupName !== undefined },
    };
  }

  private listCommands(input: Record<string, unknown>): unknown {
    const filters = commandFilters(input, ['InvokedAfter', 'InvokedBefore', 'Status', 'DocumentName']);
    const matching = this.commands.filter((command) => {
      if (input.CommandId !== undefined && command.commandId !== input.CommandId) return false;
      if (input.InstanceId !== undefined && !command.targetIds.includes(String(input.InstanceId))) return false;
      const state = this.stateOf(command);
      return filters(command.requestedAt, command.documentName, [state.status, state.statusDetails]);
    });
    const { page, nextToken } = paginate(matching, input);
    return {
      Commands: page.map((command) => {
        const state = this.stateOf(command);
        return {
          ...this.describeCommand(command),
          Status: state.status,
          StatusDetails: state.statusDetails,
          TargetCount: state.targetCount,
          CompletedCount: state.completedCount,
          ErrorCount: state.errorCount,
          DeliveryTimedOutCount: state.deliveryTimedOutCount,
        };
      }),
      ...(nextToken === undefined ? {} : { NextToken: nextToken }),
    };
  }

  private getCommandInvocation(input: Record<string, unknown>): unknown {
    const invocation = this.invocations.find((entry) => entry.commandId === input.CommandId && entry.instanceId === input.InstanceId);
    if (invocation === undefined || !this.visible(invocation.requestedAt)) {
      throw new SsmError('InvocationDoesNotExist', '');
    }
    const finished = invocation.endedAt !== undefined;
    return {
      CommandId: invocation.commandId,
      InstanceId: invocation.instanceId,
      Comment: invocation.comment,
      DocumentName: invocation.documentName,
      DocumentVersion: '1',
      PluginName: this.stepName(invocation),
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
    // ExecutionStage is for ListCommands only (CommandFilter).
    const filters = commandFilters(input, ['InvokedAfter', 'InvokedBefore', 'Status', 'DocumentName']);
    const matching = this.invocations.filter(
      (entry) =>
        (input.CommandId === undefined || entry.commandId === input.CommandId) &&
        (input.InstanceId === undefined || entry.instanceId === input.InstanceId) &&
        this.visible(entry.requestedAt) &&
        filters(entry.requestedAt, entry.documentName, [entry.status, entry.statusDetails]),
    );
    const { page, nextToken } = paginate(matching, input);
    const details = input.Details === true;
    return {
      CommandInvocations: page.map((entry) => ({
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
        CommandPlugins: details ? [this.plugin(entry)] : [],
        CloudWatchOutputConfig: { CloudWatchLogGroupName: entry.cloudWatchLogGroupName ?? '', CloudWatchOutputEnabled: entry.cloudWatchLogGroupName !== undefined },
      })),
      ...(nextToken === undefined ? {} : { NextToken: nextToken }),
    };
  }

  /** The invocation's one step, as `CommandPlugins` reports it. */
  private plugin(entry: Invocation): Record<string, unknown> {
    return {
      Name: this.stepName(entry),
      Status: entry.status,
      StatusDetails: entry.statusDetails,
      ResponseCode: entry.responseCode,
      ...(entry.startedAt === undefined ? {} : { ResponseStartDateTime: epochSeconds(entry.startedAt) }),
      ...(entry.endedAt === undefined || entry.startedAt === undefined ? {} : { ResponseFinishDateTime: epochSeconds(entry.endedAt) }),
      Output: entry.endedAt === undefined ? '' : pluginOutput(entry.stdout, entry.stderr),
      StandardOutputUrl: '',
      StandardErrorUrl: '',
      OutputS3Region: 'us-east-1',
      OutputS3BucketName: '',
      OutputS3KeyPrefix: '',
    };
  }

  private stepName(invocation: Invocation): string {
    return this.options.documents[invocation.documentName]!.mainSteps[0]!.name;
  }

  private describeInstanceInformation(input: Record<string, unknown>): unknown {
    const filters = (input.Filters ?? []) as Array<{ Key: string; Values: string[] }>;
    const legacy = (input.InstanceInformationFilterList ?? []) as Array<{ key: string; valueSet: string[] }>;
    const conditions = [...filters.map((filter) => ({ key: filter.Key, values: filter.Values })), ...legacy.map((filter) => ({ key: filter.key, values: filter.valueSet }))];
    const listed = [...this.instances.entries()].filter(([id, instance]) =>
      conditions.every(({ key, values }) => {
        if (key === 'InstanceIds') return values.includes(id);
        if (key === 'PingStatus') return values.includes(instance.pingStatus);
        if (key === 'tag-key') return values.some((tagKey) => instance.tags[tagKey] !== undefined);
        if (key.startsWith('tag:')) return values.includes(instance.tags[key.slice('tag:'.length)] ?? '\0');
        throw new SsmError('InvalidInstanceInformationFilterValue', `the loopback server does not filter on ${key}`);
      }),
    );
    const { page, nextToken } = paginate(listed, input);
    return {
      InstanceInformationList: page.map(([id, instance]) => ({
        InstanceId: id,
        PingStatus: instance.pingStatus,
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
      ...(nextToken === undefined ? {} : { NextToken: nextToken }),
    };
  }

  private getParameter(input: Record<string, unknown>): unknown {
    const name = String(input.Name ?? '');
    const stored = this.parameters.get(name);
    if (stored === undefined) throw new SsmError('ParameterNotFound', '');
    return {
      Parameter: {
        Name: name,
        Type: 'String',
        Value: stored.value,
        Version: stored.version,
        LastModifiedDate: epochSeconds(stored.lastModifiedAt),
        ARN: `arn:aws:ssm:us-east-1:111111111111:parameter/${name.replace(/^\//, '')}`,
        DataType: 'text',
      },
    };
  }

  private putParameter(input: Record<string, unknown>): unknown {
    const name = String(input.Name ?? '');
    const value = input.Value;
    if (typeof value !== 'string' || value === '') {
      throw new SsmError('ValidationException', "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1");
    }
    // Standard tier: up to 4 KB.
    if (Buffer.byteLength(value) > 4096) {
      throw new SsmError('ValidationException', 'Standard tier parameters support a maximum parameter value of 4096 characters.');
    }
    if (input.Type !== undefined && input.Type !== 'String') {
      throw new SsmError('ValidationException', `the loopback server keeps String parameters only, not ${String(input.Type)}`);
    }
    const existing = this.parameters.get(name);
    if (existing !== undefined && input.Overwrite !== true) {
      throw new SsmError('ParameterAlreadyExists', 'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.');
    }
    const version = (existing?.version ?? 0) + 1;
    this.parameters.set(name, { value, version, lastModifiedAt: new Date() });
    return { Version: version, Tier: 'Standard' };
  }

  private executionTimeoutSeconds(document: CommandDocumentContent): number {
    return this.executionTimeoutOverride ?? Number(document.mainSteps[0]!.inputs.timeoutSeconds ?? 3600);
  }

  /** The command expired before SSM Agent picked this invocation up. */
  private expireDelivery(invocation: Invocation): void {
    if (invocation.status !== 'Delayed' && invocation.status !== 'Pending') return;
    invocation.status = 'TimedOut';
    invocation.statusDetails = 'DeliveryTimedOut';
    invocation.endedAt = new Date();
    this.pumpFor(invocation);
  }

  private pumpFor(invocation: Invocation): void {
    const command = this.commands.find((entry) => entry.commandId === invocation.commandId);
    if (command !== undefined) this.pump(command);
  }

  /** Runs the document's step for `invocation`, as SSM Agent on the instance would. */
  private run(invocation: Invocation): void {
    if (invocation.status !== 'Pending' && invocation.status !== 'Delayed') return;
    const document = this.options.documents[invocation.documentName]!;
    const step = document.mainSteps[0]!;
    const scriptFile = join(this.scriptDir, `${invocation.commandId}-${invocation.instanceId}.sh`);
    writeFileSync(scriptFile, scriptOf(invocation.documentName, document), { mode: 0o700 });
    const environment = { ...this.options.environment, ...this.instances.get(invocation.instanceId)?.environment };
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
    const timeoutSeconds = this.executionTimeoutSeconds(document);
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
      this.pumpFor(invocation);
    });
  }
}

/** Failed and ExecutionTimedOut count against MaxErrors; DeliveryTimedOut does not. */
function countsAsError(entry: Invocation): boolean {
  return entry.status === 'Failed' || (entry.status === 'TimedOut' && entry.statusDetails === 'ExecutionTimedOut');
}

/** `10` or `10%` of `total`, as a number of instances (a percentage rounds down). */
function countOf(limit: string, total: number): number {
  return limit.endsWith('%') ? Math.floor((Number(limit.slice(0, -1)) * total) / 100) : Number(limit);
}

function largestPowerOfTwoAtMost(n: number): number {
  let power = 1;
  while (power * 2 <= n) power *= 2;
  return power;
}

/** A CommandFilter list (`key`/`value`, lower case) as one predicate. */
function commandFilters(
  input: Record<string, unknown>,
  allowed: readonly string[],
): (requestedAt: Date, documentName: string, statuses: readonly string[]) => boolean {
  const filters = (input.Filters ?? []) as Array<{ key: string; value: string }>;
  for (const filter of filters) {
    if (!allowed.includes(filter.key)) throw new SsmError('InvalidFilterKey', `filter key ${filter.key} is not valid here`);
  }
  return (requestedAt, documentName, statuses) =>
    filters.every(({ key, value }) => {
      switch (key) {
        case 'InvokedAfter':
          return requestedAt.getTime() >= Date.parse(value);
        case 'InvokedBefore':
          return requestedAt.getTime() < Date.parse(value);
        case 'DocumentName':
          return documentName === value;
        default:
          return statuses.includes(value);
      }
    });
}

/** MaxResults (at most 50) and an opaque NextToken, as SSM's list operations page. */
function paginate<T>(items: readonly T[], input: Record<string, unknown>): { page: T[]; nextToken?: string } {
  const size = input.MaxResults === undefined ? MAX_PAGE_SIZE : Number(input.MaxResults);
  if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE_SIZE) {
    throw new SsmError('ValidationException', `1 validation error detected: Value '${input.MaxResults}' at 'maxResults' failed to satisfy constraint`);
  }
  const from = input.NextToken === undefined ? 0 : Number(Buffer.from(String(input.NextToken), 'base64url').toString('utf8'));
  if (!Number.isInteger(from) || from < 0) throw new SsmError('InvalidNextToken', 'The specified token is not valid.');
  const page = items.slice(from, from + size);
  const next = from + size;
  return next < items.length ? { page, nextToken: Buffer.from(String(next)).toString('base64url') } : { page };
}

/**
 * What SSM Agent reports as a plugin's `Output`: stdout, then stderr under an error title, cut
 * to `SSM_PLUGIN_OUTPUT_LIMIT` characters with a marker on whichever part was cut.
 */
export function pluginOutput(stdout: string, stderr: string): string {
  const outMarker = '\n---Output truncated---';
  const errMarker = '\n---Error truncated----';
  const errorTitle = stderr === '' ? '' : '\n----------ERROR-------\n';
  const room = SSM_PLUGIN_OUTPUT_LIMIT - errorTitle.length;
  if (stdout.length + stderr.length < room) return stdout + errorTitle + stderr;
  if (stdout.length > room / 2 && stderr.length > room / 2) {
    const half = Math.floor((room - outMarker.length - errMarker.length) / 2);
    return stdout.slice(0, half) + outMarker + errorTitle + stderr.slice(0, half) + errMarker;
  }
  if (stdout.length < room / 2) return stdout + errorTitle + stderr.slice(0, room - errMarker.length - stdout.length) + errMarker;
  return stdout.slice(0, room - outMarker.length - stderr.length) + outMarker + errorTitle + stderr;
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
