/**
 * Follows a command sent to a fleet until SSM calls it final, host by host: a line when each
 * host starts and when it ends (its status and how long it ran), and each host's output as it
 * appears. Takes its clients, clock and sleep as arguments.
 *
 * The roll-out's state is read as the custom resource reads it (lambda/deploy/fleet-roll-out.ts):
 * ListCommands for the command, ListCommandInvocations for its hosts (with `Details`, whose
 * plugin times say when each host's script started and ended), and GetCommandInvocation once
 * per host that ran, when it has ended, for its exit status and output. Live lines come from
 * each host's CloudWatch Logs streams (`COMMAND/INSTANCE/STEP/stdout|stderr`), as for one host.
 */
import {
  GetCommandInvocationCommand,
  ListCommandsCommand,
  paginateListCommandInvocations,
  type Command,
  type CommandInvocation,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { classifyRollOut, rollOutProgress, type FleetCommandReport, type HostInvocation, type RollOutOutcome } from '../lib/deploy/fleet.js';
import { classifyInvocation, type FailureContext, type InvocationReport } from '../lib/deploy/invocation.js';
import { everyPage } from '../lib/deploy/pages.js';
import { retryReason } from '../lib/deploy/retry.js';
import { invisibleInvocationLimitSeconds } from '../lib/deploy/timeouts.js';
import { CLI_EXIT_CODES, CliError } from './errors.js';
import { hostEndedLine, hostNotRunLine, hostStartedLine } from './fleet-outcome.js';
import { CommandLogStreams, QUIET_NOTE_MS, type PollingDependencies } from './follow.js';
import { completeLines, LineFollower, longerOf } from './output.js';

export interface RollOutDependencies extends PollingDependencies {
  /** A host started or ended (`hostStartedLine`, `hostEndedLine`, `hostNotRunLine`). */
  readonly onProgress: (line: string) => void;
  /** Each new line of a host's stdout, in order per host. */
  readonly onHostStdout: (instanceId: string, line: string) => void;
  /** Each new line of a host's stderr, in order per host. */
  readonly onHostStderr: (instanceId: string, line: string) => void;
}

export interface SentRollOut {
  readonly commandId: string;
  readonly outputLogGroupName?: string;
  readonly context: FailureContext;
}

/** One host of an ended roll-out. */
export interface FollowedHost {
  readonly instanceId: string;
  /** GetCommandInvocation's answer when the host ran it (with its exit status); else its list entry. */
  readonly report: InvocationReport;
  /** Whether the script ran there (false: SSM stopped the roll-out before this host). */
  readonly ran: boolean;
  readonly stdout: readonly string[];
  readonly stderr: readonly string[];
}

export interface FollowedRollOut {
  readonly command: FleetCommandReport;
  readonly outcome: Exclude<RollOutOutcome, { kind: 'running' }>;
  /** In instance-id order. */
  readonly hosts: readonly FollowedHost[];
}

/** What the follower knows of one host. */
class HostTrack {
  started = false;
  ended = false;
  delayedNoted = false;
  final: InvocationReport | undefined;
  ran = false;
  stdout: readonly string[] = [];
  stderr: readonly string[] = [];
  readonly followers = { stdout: new LineFollower(), stderr: new LineFollower() };
  logStreams: CommandLogStreams | undefined;

  constructor(readonly instanceId: string) {}
}

interface HostEvent {
  readonly at: number;
  readonly kind: 'start' | 'end';
  readonly track: HostTrack;
  readonly invocation: CommandInvocation;
}

/** Follows `sent` to its end. Throws a `CliError` when SSM cannot tell what became of it. */
export async function followRollOut(deps: RollOutDependencies, sent: SentRollOut): Promise<FollowedRollOut> {
  const started = deps.now();
  const tracks = new Map<string, HostTrack>();
  let command: Command | undefined;
  let invocations: CommandInvocation[] = [];
  let lastActivity = started;
  let startedCount = 0;
  let doneCount = 0;

  const readOutput = async (track: HostTrack, ended: boolean): Promise<void> => {
    await track.logStreams?.read();
    track.stdout = longerOf(track.logStreams?.lines.stdout ?? [], completeLines(track.final?.StandardOutputContent, ended));
    track.stderr = longerOf(track.logStreams?.lines.stderr ?? [], completeLines(track.final?.StandardErrorContent, ended));
    const fresh = { stdout: track.followers.stdout.next(track.stdout), stderr: track.followers.stderr.next(track.stderr) };
    fresh.stdout.forEach((line) => deps.onHostStdout(track.instanceId, line));
    fresh.stderr.forEach((line) => deps.onHostStderr(track.instanceId, line));
    if (fresh.stdout.length + fresh.stderr.length > 0) lastActivity = deps.now();
  };

  for (;;) {
    command = (await listCommand(deps.ssm, sent.commandId)) ?? command;
    if (command !== undefined) invocations = (await listInvocations(deps.ssm, sent.commandId)) ?? invocations;
    const rollOut = command === undefined ? undefined : classifyRollOut(command, invocations);
    const total = command?.TargetCount || invocations.length;

    const events: HostEvent[] = [];
    for (const invocation of invocations) {
      const instanceId = invocation.InstanceId ?? '?';
      let track = tracks.get(instanceId);
      if (track === undefined) tracks.set(instanceId, (track = new HostTrack(instanceId)));
      if (track.ended) continue;
      const plugin = invocation.CommandPlugins?.[0];
      const status = invocation.Status ?? 'Pending';
      if (status === 'Delayed' && !track.delayedNoted) {
        track.delayedNoted = true;
        deps.onNote(`${instanceId}: Delayed: SSM Agent on it has not picked the command up; SSM keeps trying until the delivery timeout (${sent.context.deliveryTimeoutSeconds}s)`);
      }
      const ended = classifyInvocation(invocation, sent.context).kind !== 'running' || (rollOut !== undefined && rollOut.kind !== 'running');
      const ran = ended ? !neverRan(invocation) : status === 'InProgress' || status === 'Cancelling';
      const startAt = plugin?.ResponseStartDateTime?.getTime() ?? deps.now();
      if (ran && !track.started) events.push({ at: startAt, kind: 'start', track, invocation });
      if (ended) events.push({ at: Math.max(plugin?.ResponseFinishDateTime?.getTime() ?? deps.now(), ran ? startAt : 0), kind: 'end', track, invocation });
    }
    // In the order they happened on the hosts; a host that ended makes room before the next starts.
    events.sort((a, b) => (a.track === b.track ? (a.kind === 'start' ? -1 : 1) : a.at - b.at || (a.kind === b.kind ? 0 : a.kind === 'end' ? -1 : 1)));

    for (const event of events) {
      const { track, invocation } = event;
      if (event.kind === 'start') {
        track.started = true;
        track.ran = true;
        startedCount += 1;
        if (deps.logs !== undefined && sent.outputLogGroupName !== undefined) {
          track.logStreams = new CommandLogStreams(deps.logs, sent.outputLogGroupName, `${sent.commandId}/${track.instanceId}/`, deps.onNote);
        }
        deps.onProgress(hostStartedLine(track.instanceId, { started: startedCount, total }));
        lastActivity = deps.now();
        continue;
      }
      track.ended = true;
      doneCount += 1;
      lastActivity = deps.now();
      if (!track.started) {
        track.final = invocation;
        deps.onProgress(hostNotRunLine(track.instanceId, invocation));
        continue;
      }
      track.final = (await readInvocation(deps.ssm, sent.commandId, track.instanceId)) ?? invocation;
      await readOutput(track, true);
      const plugin = invocation.CommandPlugins?.[0];
      const start = plugin?.ResponseStartDateTime?.getTime();
      const finish = plugin?.ResponseFinishDateTime?.getTime();
      const seconds = start === undefined || finish === undefined ? undefined : (finish - start) / 1000;
      deps.onProgress(hostEndedLine(track.instanceId, track.final, seconds, { done: doneCount, total }, sent.context));
    }
    for (const track of tracks.values()) if (track.started && !track.ended) await readOutput(track, false);

    if (rollOut !== undefined && rollOut.kind !== 'running' && [...tracks.values()].every((track) => track.ended)) {
      const hosts = [...tracks.values()]
        .sort((a, b) => a.instanceId.localeCompare(b.instanceId))
        .map((track) => ({ instanceId: track.instanceId, report: track.final!, ran: track.ran, stdout: track.stdout, stderr: track.stderr }));
      return { command: command!, outcome: rollOut, hosts };
    }

    const elapsedSeconds = Math.round((deps.now() - started) / 1000);
    if (command === undefined && elapsedSeconds > invisibleInvocationLimitSeconds(sent.context.deliveryTimeoutSeconds)) {
      throw new CliError(
        `Systems Manager shows no command ${sent.commandId} ${elapsedSeconds}s after it was sent, so it never started; the fleet is unchanged. Run the command again.`,
        CLI_EXIT_CODES.didNotFinish,
      );
    }
    if (deps.now() - lastActivity >= QUIET_NOTE_MS) {
      deps.onNote(`still running after ${elapsedSeconds}s: ${command === undefined ? 'waiting for Systems Manager to show the command' : rollOutProgress(command, invocations)}`);
      lastActivity = deps.now();
    }
    await deps.sleep(deps.pollMs);
  }
}

/** Never started: SSM stopped the roll-out at its error limit before this host (or never reached it). */
function neverRan(invocation: HostInvocation): boolean {
  return invocation.Status === 'Pending' || invocation.Status === 'Delayed' || (invocation.Status === 'Cancelled' && invocation.StatusDetails?.replace(/\s+/g, '') === 'Terminated');
}

function cannotRead(commandId: string, error: unknown): CliError {
  const { name, message } = error as Error;
  return new CliError(
    `cannot read command ${commandId} (${name}: ${message}). It may still be running on the hosts; ` +
      `check with: aws ssm list-command-invocations --command-id ${commandId} --details`,
    CLI_EXIT_CODES.aws,
  );
}

/** Whether a failed read is worth asking again on the next poll. */
function passing(error: unknown): boolean {
  const reason = retryReason(error);
  return reason === 'throttled' || reason === 'service-error';
}

/** The command, or undefined while SSM does not show it yet or throttles us. */
async function listCommand(ssm: SSMClient, commandId: string): Promise<Command | undefined> {
  try {
    const answer = await ssm.send(new ListCommandsCommand({ CommandId: commandId }));
    return answer.Commands?.find((entry) => entry.CommandId === commandId);
  } catch (error) {
    if (passing(error) || (error as Error).name === 'InvalidCommandId') return undefined;
    throw cannotRead(commandId, error);
  }
}

/** Every host's invocation (every page), or undefined when throttled (the next poll asks again). */
async function listInvocations(ssm: SSMClient, commandId: string): Promise<CommandInvocation[] | undefined> {
  let found: CommandInvocation[];
  try {
    found = await everyPage(paginateListCommandInvocations({ client: ssm }, { CommandId: commandId, Details: true }), (page) => page.CommandInvocations);
  } catch (error) {
    if (passing(error)) return undefined;
    throw cannotRead(commandId, error);
  }
  return found.sort((a, b) => (a.InstanceId ?? '').localeCompare(b.InstanceId ?? ''));
}

/** One ended host's invocation with its exit status and output; undefined when SSM will not say now. */
async function readInvocation(ssm: SSMClient, commandId: string, instanceId: string): Promise<InvocationReport | undefined> {
  try {
    return await ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }));
  } catch {
    // Its list entry still says how it ended; only its output and exit status are missing.
    return undefined;
  }
}
