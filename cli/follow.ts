/**
 * Follows a sent command until SSM reports that it ended, handing out each new line of the
 * host's stdout and stderr as it appears. Takes its clients, clock and sleep as arguments.
 *
 * Live lines come from the command's CloudWatch Logs streams (`COMMAND/INSTANCE/STEP/stdout`
 * and `.../stderr` in the document's output log group), which SSM Agent writes while the
 * script runs. GetCommandInvocation gives the status, and the output too, but only once the
 * invocation has ended; without the log group (no access, or no such output) the lines arrive then.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CloudWatchLogsClient, DescribeLogStreamsCommand, paginateGetLogEvents } from '@aws-sdk/client-cloudwatch-logs';
import { GetCommandInvocationCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { classifyInvocation, type FailureContext, type InvocationReport } from '../lib/deploy/invocation.js';
import { retryReason } from '../lib/deploy/retry.js';
import { invisibleInvocationLimitSeconds } from '../lib/deploy/timeouts.js';
import { CLI_EXIT_CODES, CliError } from './errors.js';
import { completeLines, eventLines, LineFollower, longerOf } from './output.js';
import type { Clients } from './clients.js';

/** What following a command in SSM and its output in CloudWatch Logs needs, on one host or many. */
export interface PollingDependencies {
  readonly ssm: SSMClient;
  /** @default - no live output: the lines arrive when the command ends */
  readonly logs?: CloudWatchLogsClient;
  /** Epoch milliseconds. */
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** How often to ask SSM and CloudWatch Logs. */
  readonly pollMs: number;
  /** What this command has to say while it waits (a quiet command, a log group it cannot read). */
  readonly onNote: (text: string) => void;
}

/** How often the command asks SSM and CloudWatch Logs while it follows a command. */
export const POLL_MS = 1000;

/** The real clients, clock and sleep, polling every `POLL_MS`. */
export function livePolling(clients: Clients): Omit<PollingDependencies, 'onNote'> {
  return { ssm: clients.ssm, logs: clients.logs, now: Date.now, sleep: (ms) => sleep(ms), pollMs: POLL_MS };
}

export interface FollowDependencies extends PollingDependencies {
  /** Each new line of the host's stdout, in order. */
  readonly onStdout: (line: string) => void;
  /** Each new line of the host's stderr, in order. */
  readonly onStderr: (line: string) => void;
}

export interface SentCommand {
  readonly commandId: string;
  readonly instanceId: string;
  /** The `CloudWatchOutputConfig` log group the command was sent with. */
  readonly outputLogGroupName?: string;
  readonly context: FailureContext;
}

export interface FollowedCommand {
  /** The ended invocation. */
  readonly report: InvocationReport;
  /** Every line of the host's stdout and stderr. */
  readonly stdout: readonly string[];
  readonly stderr: readonly string[];
}

/** After this long without a new line, say that the command is still running. */
export const QUIET_NOTE_MS = 30_000;

type StreamName = 'stdout' | 'stderr';

/** The command's two output streams on one host in CloudWatch Logs, read forward from where the last read ended. */
export class CommandLogStreams {
  readonly lines: Record<StreamName, string[]> = { stdout: [], stderr: [] };
  private readonly streamNames: Partial<Record<StreamName, string>> = {};
  private readonly tokens: Partial<Record<StreamName, string>> = {};
  private disabled = false;

  constructor(
    private readonly logs: CloudWatchLogsClient,
    private readonly logGroupName: string,
    private readonly streamPrefix: string,
    private readonly onNote: (text: string) => void,
  ) {}

  async read(): Promise<void> {
    if (this.disabled) return;
    try {
      if (this.streamNames.stdout === undefined || this.streamNames.stderr === undefined) await this.findStreams();
      for (const stream of ['stdout', 'stderr'] as const) await this.readStream(stream);
    } catch (error) {
      const reason = retryReason(error);
      // Throttled or a passing service error: the next poll reads on from the same token.
      if (reason === 'throttled' || reason === 'service-error') return;
      this.disabled = true;
      const { name, message } = error as Error;
      this.onNote(
        `cannot read the live output from CloudWatch Logs group ${this.logGroupName} (${name}: ${message}); ` +
          'the output follows when the command ends (it needs logs:DescribeLogStreams and logs:GetLogEvents).',
      );
    }
  }

  private async findStreams(): Promise<void> {
    const answer = await this.logs.send(new DescribeLogStreamsCommand({ logGroupName: this.logGroupName, logStreamNamePrefix: this.streamPrefix }));
    for (const stream of answer.logStreams ?? []) {
      const name = stream.logStreamName ?? '';
      if (name.endsWith('/stdout')) this.streamNames.stdout = name;
      if (name.endsWith('/stderr')) this.streamNames.stderr = name;
    }
  }

  private async readStream(stream: StreamName): Promise<void> {
    const logStreamName = this.streamNames[stream];
    if (logStreamName === undefined) return;
    // The same token back means nothing more for now (stopOnSameToken); the next poll reads on from it.
    const pages = paginateGetLogEvents(
      { client: this.logs, startingToken: this.tokens[stream], stopOnSameToken: true },
      { logGroupName: this.logGroupName, logStreamName, startFromHead: true },
    );
    for await (const page of pages) {
      this.lines[stream].push(...eventLines((page.events ?? []).map((event) => event.message ?? '')));
      if (page.nextForwardToken !== undefined) this.tokens[stream] = page.nextForwardToken;
      if ((page.events ?? []).length === 0) return;
    }
  }
}

/** Follows `sent` to its end. Throws a `CliError` when SSM cannot tell what became of it. */
export async function followCommand(deps: FollowDependencies, sent: SentCommand): Promise<FollowedCommand> {
  const started = deps.now();
  const ids = { CommandId: sent.commandId, InstanceId: sent.instanceId };
  const logStreams =
    deps.logs === undefined || sent.outputLogGroupName === undefined
      ? undefined
      : new CommandLogStreams(deps.logs, sent.outputLogGroupName, `${sent.commandId}/${sent.instanceId}/`, deps.onNote);
  const followers = { stdout: new LineFollower(), stderr: new LineFollower() };
  let report: InvocationReport | undefined;
  let lastActivity = started;

  for (;;) {
    report = (await readInvocation(deps.ssm, ids)) ?? report;
    const ended = report !== undefined && classifyInvocation(report, sent.context).kind !== 'running';
    await logStreams?.read();

    const stdout = longerOf(logStreams?.lines.stdout ?? [], completeLines(report?.StandardOutputContent, ended));
    const stderr = longerOf(logStreams?.lines.stderr ?? [], completeLines(report?.StandardErrorContent, ended));
    const fresh = { stdout: followers.stdout.next(stdout), stderr: followers.stderr.next(stderr) };
    fresh.stdout.forEach((line) => deps.onStdout(line));
    fresh.stderr.forEach((line) => deps.onStderr(line));
    if (fresh.stdout.length + fresh.stderr.length > 0) lastActivity = deps.now();

    if (ended) return { report: report!, stdout, stderr };

    const elapsedSeconds = Math.round((deps.now() - started) / 1000);
    if (report === undefined && elapsedSeconds > invisibleInvocationLimitSeconds(sent.context.deliveryTimeoutSeconds)) {
      throw new CliError(
        `Systems Manager shows no invocation of command ${sent.commandId} on ${sent.instanceId} ${elapsedSeconds}s after it was sent, ` +
          'so it never started; the host is unchanged. Run the command again.',
        CLI_EXIT_CODES.didNotFinish,
      );
    }
    if (deps.now() - lastActivity >= QUIET_NOTE_MS) {
      deps.onNote(`still ${report?.Status ?? 'Pending'} after ${elapsedSeconds}s${report?.Status === 'Pending' || report === undefined ? ' (waiting for SSM Agent on the instance to pick the command up)' : ''}`);
      lastActivity = deps.now();
    }
    await deps.sleep(deps.pollMs);
  }
}

/** The invocation, or undefined while SSM does not show it yet or throttles us (the next poll asks again). */
async function readInvocation(ssm: SSMClient, ids: { CommandId: string; InstanceId: string }): Promise<InvocationReport | undefined> {
  try {
    return await ssm.send(new GetCommandInvocationCommand(ids));
  } catch (error) {
    const { name, message } = error as Error;
    const reason = retryReason(error);
    if (name === 'InvocationDoesNotExist' || reason === 'throttled' || reason === 'service-error') return undefined;
    throw new CliError(
      `cannot read command ${ids.CommandId} on ${ids.InstanceId} (${name}: ${message}). It may still be running on the host; ` +
        `check with: aws ssm get-command-invocation --command-id ${ids.CommandId} --instance-id ${ids.InstanceId}`,
      CLI_EXIT_CODES.aws,
    );
  }
}
