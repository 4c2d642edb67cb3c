/**
 * The deploy custom resource's two handlers for the CDK Provider framework, built from their
 * dependencies (SSM client, clock, sleep, settings, logger) so that tests can pass their own.
 *
 * onEvent (Create, Update): waits until the instance is Online in Systems Manager, sends the
 * deploy document once, and hands the command id to isComplete. Delete touches nothing.
 * isComplete: reads the invocation until it ends; success returns the live slot and version,
 * anything else throws a reason that CloudFormation shows.
 */
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  GetParameterCommand,
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  PutParameterCommand,
  SendCommandCommand,
  type Command,
  type CommandInvocation,
  type InstanceInformation,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { DEPLOYMENT_ATTRIBUTES } from '../../lib/contract.js';
import { classifyRollOut, fleetFailureMessage, nextFleetRelease, parseFleetRelease, renderFleetRelease, type FailedHost } from '../../lib/deploy/fleet.js';
import { classifyInvocation, deployResult, failureMessage, type InvocationReport } from '../../lib/deploy/invocation.js';
import type { Logger } from './log.js';
import { IAM_PROPAGATION_SECONDS, retryReason, withRetries, type RetryDependencies } from '../../lib/deploy/retry.js';
import {
  catchUpCommentPrefix,
  readDeploymentRequest,
  sendCommandInput,
  type DeploymentRequest,
  type FleetDeployTarget,
  type FleetTarget,
} from '../../lib/deploy/send-command.js';
import type { DeploySettings } from './settings.js';
import { invisibleInvocationLimitSeconds, SEND_ALLOWANCE_SECONDS } from '../../lib/deploy/timeouts.js';

/** A CloudFormation custom resource request, as the Provider framework passes it on. */
export interface CustomResourceEvent {
  readonly RequestType: 'Create' | 'Update' | 'Delete';
  readonly LogicalResourceId: string;
  readonly RequestId: string;
  readonly StackId: string;
  readonly ResourceType: string;
  readonly ResourceProperties: Readonly<Record<string, unknown>>;
  readonly OldResourceProperties?: Readonly<Record<string, unknown>>;
  /** Absent on Create. */
  readonly PhysicalResourceId?: string;
}

/** The command `onEvent` sent; the framework hands it to every `isComplete` call. */
export interface SentCommand {
  readonly commandId: string;
  /** The one instance; absent for a fleet. */
  readonly instanceId?: string;
  /** The fleet the command targets by tag; absent for one instance. */
  readonly fleet?: FleetDeployTarget;
  /** Epoch milliseconds. */
  readonly sentAt: number;
  readonly version?: string;
}

export interface OnEventResult {
  readonly PhysicalResourceId: string;
  /** Absent on Delete: nothing was sent. */
  readonly BlueGreenCommand?: SentCommand;
}

export type IsCompleteEvent = CustomResourceEvent & OnEventResult;

export interface IsCompleteResult {
  readonly IsComplete: boolean;
  readonly Data?: Readonly<Record<string, string>>;
}

/** The part of the Lambda context the handlers read. */
export interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

export interface HandlerDependencies {
  readonly ssm: SSMClient;
  readonly settings: DeploySettings;
  readonly log: Logger;
  /** Epoch milliseconds. */
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** In [0, 1), for backoff jitter. */
  readonly random: () => number;
}

/**
 * A deploy that failed: its message is the whole CloudFormation reason. The stack is left out
 * because the framework appends the function's trace to the reason, and CloudFormation's 4 KB
 * are better spent on the host's output.
 */
export class DeployFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeployFailedError';
    this.stack = `${this.name}: ${message}`;
  }
}

/** Keeps a call this long away from the Lambda timeout, so the function can still answer. */
const LAMBDA_MARGIN_MS = 10_000;
/** How long one `isComplete` call retries throttling before it answers "not yet". */
const IS_COMPLETE_RETRY_MS = 20_000;
/** How many failed hosts a roll-out's failure message quotes in full. */
const MAX_DETAILED_HOSTS = 3;

export function createHandlers(deps: HandlerDependencies) {
  const { ssm, settings, log } = deps;
  const retrying = (what: string): RetryDependencies => ({
    now: deps.now,
    sleep: deps.sleep,
    random: deps.random,
    onRetry: (error, reason, attempt, delayMs) => log.warn(`${what}: retrying`, { reason, attempt, delayMs, error }),
  });

  /** Until `deadline` (epoch ms): resolves once the instance is Online, else throws why not. */
  async function waitUntilOnline(instanceId: string, deadline: number): Promise<void> {
    const started = deps.now();
    let lastSeen = 'not registered with Systems Manager';
    for (;;) {
      const info = await withRetries(
        () => ssm.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: 'InstanceIds', Values: [instanceId] }] })),
        deadline,
        retrying('DescribeInstanceInformation'),
      ).catch((error: Error) => {
        throw new DeployFailedError(
          `Cannot ask Systems Manager whether ${instanceId} is Online (${error.name}: ${error.message}), so nothing was ` +
            'sent and the host is unchanged. Check the deploy function\'s permissions (ssm:DescribeInstanceInformation); then deploy again.',
        );
      });
      const instance = info.InstanceInformationList?.find((entry) => entry.InstanceId === instanceId);
      if (instance?.PingStatus === 'Online') return;
      if (instance !== undefined) {
        const lastPing = instance.LastPingDateTime === undefined ? 'never' : instance.LastPingDateTime.toISOString();
        lastSeen = `${instance.PingStatus ?? 'unknown'} (last ping ${lastPing})`;
      }
      const pollMs = settings.onlinePollSeconds * 1000;
      if (deps.now() + pollMs > deadline) {
        const waited = Math.round((deps.now() - started) / 1000);
        throw new DeployFailedError(
          `Instance ${instanceId} is not Online in Systems Manager after ${waited}s (it is ${lastSeen}), so nothing was ` +
            `sent and the host is unchanged. Check that the instance is running, that SSM Agent runs on it, that its ` +
            `role has AmazonSSMManagedInstanceCore, and that it can reach the SSM endpoints; then deploy again.`,
        );
      }
      log.info('waiting for the instance to be Online', { instanceId, lastSeen });
      await deps.sleep(pollMs);
    }
  }

  /** The fleet's hosts as Systems Manager knows them (every page). */
  async function fleetInstances(fleet: FleetTarget, deadline: number): Promise<InstanceInformation[]> {
    const found: InstanceInformation[] = [];
    let nextToken: string | undefined;
    do {
      const page = await withRetries(
        () =>
          ssm.send(
            new DescribeInstanceInformationCommand({ Filters: [{ Key: `tag:${fleet.tagKey}`, Values: [fleet.tagValue] }], NextToken: nextToken }),
          ),
        deadline,
        retrying('DescribeInstanceInformation'),
      );
      found.push(...(page.InstanceInformationList ?? []));
      nextToken = page.NextToken;
    } while (nextToken !== undefined);
    return found;
  }

  /**
   * Until `deadline`: resolves once at least one fleet host is Online. SSM itself sends to the
   * others as they come (a host still booting goes Delayed, then runs the deploy).
   */
  async function waitUntilFleetOnline(fleet: FleetTarget, deadline: number): Promise<void> {
    const started = deps.now();
    const target = `tag ${fleet.tagKey}=${fleet.tagValue}`;
    for (;;) {
      const hosts = await fleetInstances(fleet, deadline).catch((error: Error) => {
        throw new DeployFailedError(
          `Cannot ask Systems Manager which hosts carry ${target} (${error.name}: ${error.message}), so nothing was sent and ` +
            "the fleet is unchanged. Check the deploy function's permissions (ssm:DescribeInstanceInformation); then deploy again.",
        );
      });
      if (hosts.some((host) => host.PingStatus === 'Online')) return;
      const pollMs = settings.onlinePollSeconds * 1000;
      if (deps.now() + pollMs > deadline) {
        const waited = Math.round((deps.now() - started) / 1000);
        const seen = hosts.map((host) => `${host.InstanceId} ${host.PingStatus}`).join(', ') || 'none registered';
        throw new DeployFailedError(
          `No host with ${target} is Online in Systems Manager after ${waited}s (${seen}), so nothing was sent and the fleet ` +
            'is unchanged. Check the Auto Scaling group has running instances, that SSM Agent runs on them, that their role has ' +
            'AmazonSSMManagedInstanceCore, and that they can reach the SSM endpoints; then deploy again.',
        );
      }
      log.info('waiting for a fleet host to be Online', { target, seen: hosts.length });
      await deps.sleep(pollMs);
    }
  }

  /** Sends the deploy document once the instance (or a fleet host) is Online; returns the command id. */
  async function send(request: DeploymentRequest, event: CustomResourceEvent, deadline: number, lambdaEnd: number): Promise<string> {
    const input = sendCommandInput(request, settings, {
      requestType: event.RequestType === 'Create' ? 'Create' : 'Update',
      logicalResourceId: event.LogicalResourceId,
    });
    const where = request.fleet === undefined ? request.instanceId! : `the hosts tagged ${request.fleet.tagKey}=${request.fleet.tagValue}`;
    for (;;) {
      if (request.fleet === undefined) await waitUntilOnline(request.instanceId!, deadline);
      else await waitUntilFleetOnline(request.fleet, deadline);
      try {
        const sendDeadline = Math.min(deps.now() + SEND_ALLOWANCE_SECONDS * 1000, lambdaEnd);
        const sent = await withRetries(() => ssm.send(new SendCommandCommand(input)), sendDeadline, retrying('SendCommand'));
        const commandId = sent.Command?.CommandId;
        if (commandId === undefined) throw new Error('SendCommand answered without a command id');
        return commandId;
      } catch (error) {
        const name = (error as Error).name;
        // Online in one API and not yet in another for a moment after registration.
        if (name === 'InvalidInstanceId' && deps.now() + settings.onlinePollSeconds * 1000 <= deadline) {
          log.warn('SendCommand does not accept the instance yet; waiting', { instanceId: request.instanceId, error });
          await deps.sleep(settings.onlinePollSeconds * 1000);
          continue;
        }
        throw new DeployFailedError(
          `Systems Manager refused to run ${request.documentName} on ${where} ` +
            `(${name}: ${(error as Error).message}). Nothing ran on the host; the current release keeps serving.`,
        );
      }
    }
  }

  async function onEvent(event: CustomResourceEvent, context?: InvocationContext): Promise<OnEventResult> {
    log.info('onEvent', {
      requestType: event.RequestType,
      logicalResourceId: event.LogicalResourceId,
      physicalResourceId: event.PhysicalResourceId,
      properties: event.ResourceProperties,
    });
    const physicalResourceId = event.PhysicalResourceId ?? `bluegreen-deployment/${event.LogicalResourceId}`;
    // The app keeps serving, and the instance may already be gone: nothing to do on the host.
    if (event.RequestType === 'Delete') return { PhysicalResourceId: physicalResourceId };

    let request: DeploymentRequest;
    try {
      request = readDeploymentRequest(event.ResourceProperties);
    } catch (error) {
      throw new DeployFailedError((error as Error).message);
    }
    const started = deps.now();
    const lambdaEnd = started + (context?.getRemainingTimeInMillis() ?? Number.POSITIVE_INFINITY) - LAMBDA_MARGIN_MS;
    const deadline = Math.min(started + settings.onlineWaitSeconds * 1000, lambdaEnd - SEND_ALLOWANCE_SECONDS * 1000);
    const commandId = await send(request, event, deadline, lambdaEnd);
    log.info('deploy sent', { commandId, instanceId: request.instanceId, fleet: request.fleet, version: request.version, waitedMs: deps.now() - started });
    return {
      PhysicalResourceId: physicalResourceId,
      BlueGreenCommand: {
        commandId,
        ...(request.fleet === undefined ? { instanceId: request.instanceId } : { fleet: request.fleet }),
        sentAt: deps.now(),
        version: request.version,
      },
    };
  }

  /** The invocation's state, or undefined while SSM does not show it yet. */
  async function readInvocation(command: SentCommand): Promise<InvocationReport | undefined> {
    const deadline = deps.now() + IS_COMPLETE_RETRY_MS;
    const ids = { CommandId: command.commandId, InstanceId: command.instanceId! };
    try {
      return await withRetries(() => ssm.send(new GetCommandInvocationCommand(ids)), deadline, retrying('GetCommandInvocation'));
    } catch (error) {
      if ((error as Error).name !== 'InvocationDoesNotExist') throw error;
    }
    // GetCommandInvocation lags behind right after SendCommand; the list may already know more.
    const listed = await withRetries(() => ssm.send(new ListCommandInvocationsCommand(ids)), deadline, retrying('ListCommandInvocations'));
    return listed.CommandInvocations?.find((invocation) => invocation.InstanceId === command.instanceId);
  }

  async function isComplete(event: IsCompleteEvent): Promise<IsCompleteResult> {
    const command = event.BlueGreenCommand;
    if (event.RequestType === 'Delete' || command === undefined) return { IsComplete: true };
    if (command.fleet !== undefined) return fleetIsComplete(event, command, command.fleet);

    let report: InvocationReport | undefined;
    try {
      report = await readInvocation(command);
    } catch (error) {
      if (readLater(error, command)) return { IsComplete: false };
      throw new DeployFailedError(
        `Cannot read command ${command.commandId} on ${command.instanceId} (${(error as Error).name}: ${(error as Error).message}). ` +
          `The deploy may still be running on the host; check with: aws ssm get-command-invocation ` +
          `--command-id ${command.commandId} --instance-id ${command.instanceId}.`,
      );
    }
    const elapsedSeconds = Math.round((deps.now() - command.sentAt) / 1000);
    if (report === undefined) {
      notVisibleTooLong(command, elapsedSeconds);
      log.info('invocation not visible yet', { commandId: command.commandId, elapsedSeconds });
      return { IsComplete: false };
    }

    const outcome = classifyInvocation(report, settings);
    log.info('invocation', {
      commandId: command.commandId,
      status: report.Status,
      statusDetails: report.StatusDetails,
      responseCode: report.ResponseCode,
      outcome: outcome.kind,
      elapsedSeconds,
    });
    if (outcome.kind === 'running') return { IsComplete: false };
    if (outcome.kind === 'failed') {
      const message = failureMessage({
        summary: outcome.summary,
        report,
        commandId: command.commandId,
        instanceId: command.instanceId!,
        version: command.version,
        outputLogGroupName: settings.outputLogGroupName,
      });
      log.error('deploy failed', { commandId: command.commandId, reason: message });
      throw new DeployFailedError(message);
    }
    const result = deployResult(report.StandardOutputContent);
    if (result.liveSlot === undefined) {
      log.warn('the output names no live slot', { commandId: command.commandId });
    }
    const data = {
      [DEPLOYMENT_ATTRIBUTES.liveSlot]: result.liveSlot ?? 'unknown',
      [DEPLOYMENT_ATTRIBUTES.version]: result.version ?? command.version ?? '',
      [DEPLOYMENT_ATTRIBUTES.commandId]: command.commandId,
    };
    log.info('deploy succeeded', { ...data, elapsedSeconds });
    return { IsComplete: true, Data: data };
  }

  /**
   * Whether a read that failed past this call's retries is worth asking again on the next
   * `isComplete` (throttling, a service error, a role still propagating); logs it if so.
   */
  function readLater(error: unknown, command: SentCommand): boolean {
    const reason = retryReason(error);
    const stillPropagating = deps.now() - command.sentAt < IAM_PROPAGATION_SECONDS * 1000;
    if (reason === 'throttled' || reason === 'service-error' || (reason === 'iam-propagation' && stillPropagating)) {
      log.warn('cannot read the command now; asking again next time', { commandId: command.commandId, error });
      return true;
    }
    return false;
  }

  /** Throws once SSM should have shown the command for a while and still does not. */
  function notVisibleTooLong(command: SentCommand, elapsedSeconds: number): void {
    const limit = invisibleInvocationLimitSeconds(settings.deliveryTimeoutSeconds);
    if (elapsedSeconds <= limit) return;
    const where = command.instanceId ?? `the hosts tagged ${command.fleet?.tagKey}=${command.fleet?.tagValue}`;
    throw new DeployFailedError(
      `Systems Manager has no invocation of command ${command.commandId} on ${where} ${elapsedSeconds}s ` +
        `after it was sent, so the deploy never started; the ${command.instanceId === undefined ? 'fleet' : 'host'} is unchanged. Deploy again.`,
    );
  }

  /** Every invocation of a command, or of an instance's commands matching `filters`. */
  async function listInvocations(input: { CommandId?: string; InstanceId?: string; Filters?: Array<{ key: 'InvokedAfter' | 'DocumentName'; value: string }> }): Promise<CommandInvocation[]> {
    const deadline = deps.now() + IS_COMPLETE_RETRY_MS;
    const found: CommandInvocation[] = [];
    let nextToken: string | undefined;
    do {
      const page = await withRetries(
        () => ssm.send(new ListCommandInvocationsCommand({ ...input, NextToken: nextToken })),
        deadline,
        retrying('ListCommandInvocations'),
      );
      found.push(...(page.CommandInvocations ?? []));
      nextToken = page.NextToken;
    } while (nextToken !== undefined);
    return found;
  }

  /** Commands matching `filters` (every page). */
  async function listCommands(filters: Array<{ key: 'InvokedAfter' | 'DocumentName'; value: string }>): Promise<Command[]> {
    const deadline = deps.now() + IS_COMPLETE_RETRY_MS;
    const found: Command[] = [];
    let nextToken: string | undefined;
    do {
      const page = await withRetries(() => ssm.send(new ListCommandsCommand({ Filters: filters, NextToken: nextToken })), deadline, retrying('ListCommands'));
      found.push(...(page.Commands ?? []));
      nextToken = page.NextToken;
    } while (nextToken !== undefined);
    return found;
  }

  /** Failed hosts with their output (GetCommandInvocation), the first few only: the message has 4 KB. */
  async function failedHostDetails(commandId: string, failed: ReadonlyArray<{ InstanceId?: string }>): Promise<FailedHost[]> {
    const deadline = deps.now() + IS_COMPLETE_RETRY_MS;
    const details: FailedHost[] = [];
    for (const host of failed.slice(0, MAX_DETAILED_HOSTS)) {
      const instanceId = host.InstanceId ?? '?';
      const report = await withRetries(
        () => ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId })),
        deadline,
        retrying('GetCommandInvocation'),
      ).catch(() => host as InvocationReport);
      details.push({ instanceId, report });
    }
    return details;
  }

  /** Records the release for hosts that join later, once per roll-out (the catch-up may poll many times). */
  async function recordRelease(command: SentCommand, fleet: FleetDeployTarget, request: DeploymentRequest): Promise<void> {
    const deadline = deps.now() + IS_COMPLETE_RETRY_MS;
    const current = await withRetries(
      () => ssm.send(new GetParameterCommand({ Name: fleet.releaseParameterName })),
      deadline,
      retrying('GetParameter'),
    );
    const recorded = parseFleetRelease(current.Parameter?.Value);
    if (recorded?.commandId === command.commandId) return;
    const value = renderFleetRelease(
      nextFleetRelease(recorded, {
        artifactUri: request.artifactUri,
        sha256: request.sha256,
        version: request.version ?? '',
        commandId: command.commandId,
        recordedAt: new Date(deps.now()).toISOString(),
        recordedBy: 'cloudformation',
      }),
    );
    await withRetries(
      () => ssm.send(new PutParameterCommand({ Name: fleet.releaseParameterName, Value: value, Type: 'String', Overwrite: true })),
      deadline,
      retrying('PutParameter'),
    );
    log.info('release recorded', { parameter: fleet.releaseParameterName, commandId: command.commandId, version: request.version });
  }

  /**
   * A roll-out across the fleet: follows every host's invocation; on success records the
   * release, then deploys it to hosts that joined the fleet after the command was sent (SSM
   * resolved the tag at that moment), completing once they have it too.
   */
  async function fleetIsComplete(event: IsCompleteEvent, command: SentCommand, fleet: FleetDeployTarget): Promise<IsCompleteResult> {
    const elapsedSeconds = Math.round((deps.now() - command.sentAt) / 1000);
    try {
      const deadline = deps.now() + IS_COMPLETE_RETRY_MS;
      const listed = await withRetries(
        () => ssm.send(new ListCommandsCommand({ CommandId: command.commandId })),
        deadline,
        retrying('ListCommands'),
      );
      const report = listed.Commands?.find((entry) => entry.CommandId === command.commandId);
      if (report === undefined) {
        notVisibleTooLong(command, elapsedSeconds);
        return { IsComplete: false };
      }
      const invocations = await listInvocations({ CommandId: command.commandId });
      const outcome = classifyRollOut(report, invocations);
      log.info('roll-out', {
        commandId: command.commandId,
        status: report.Status,
        hosts: invocations.map((entry) => ({ instanceId: entry.InstanceId, status: entry.Status, details: entry.StatusDetails })),
        elapsedSeconds,
      });
      if (outcome.kind === 'running') return { IsComplete: false };
      if (outcome.kind === 'failed') {
        const message = fleetFailureMessage({
          summary: outcome.summary,
          commandId: command.commandId,
          version: command.version,
          failedHosts: await failedHostDetails(command.commandId, outcome.failed),
          succeeded: outcome.succeeded,
          untouched: outcome.untouched,
          context: settings,
          outputLogGroupName: settings.outputLogGroupName,
        });
        log.error('roll-out failed', { commandId: command.commandId, reason: message });
        throw new DeployFailedError(message);
      }

      const request = readDeploymentRequest(event.ResourceProperties);
      await recordRelease(command, fleet, request);
      const pending = await catchUp(event, command, fleet, request, new Set(outcome.instanceIds));
      if (pending) return { IsComplete: false };
      const data = {
        [DEPLOYMENT_ATTRIBUTES.liveSlot]: 'per-host',
        [DEPLOYMENT_ATTRIBUTES.version]: command.version ?? '',
        [DEPLOYMENT_ATTRIBUTES.commandId]: command.commandId,
        [DEPLOYMENT_ATTRIBUTES.hosts]: String(outcome.instanceIds.length),
      };
      log.info('roll-out succeeded', { ...data, elapsedSeconds });
      return { IsComplete: true, Data: data };
    } catch (error) {
      if (error instanceof DeployFailedError) throw error;
      if (readLater(error, command)) return { IsComplete: false };
      throw new DeployFailedError(
        `Cannot follow roll-out ${command.commandId} (${(error as Error).name}: ${(error as Error).message}). ` +
          `It may still be running; check with: aws ssm list-command-invocations --command-id ${command.commandId}.`,
      );
    }
  }

  /**
   * Hosts that carry the fleet's tag but were not targets of the roll-out (the Auto Scaling
   * group added them while it ran) get the release too. Returns true while a catch-up runs;
   * throws when one failed. A host that is not Online is left to its own boot, which reads the
   * release just recorded.
   */
  async function catchUp(
    event: IsCompleteEvent,
    command: SentCommand,
    fleet: FleetDeployTarget,
    request: DeploymentRequest,
    covered: ReadonlySet<string>,
  ): Promise<boolean> {
    const hosts = await fleetInstances(fleet, deps.now() + IS_COMPLETE_RETRY_MS);
    const joined = hosts.filter((host) => host.InstanceId !== undefined && !covered.has(host.InstanceId));
    if (joined.length === 0) return false;

    // Found by ListCommands, which shows a command as soon as SendCommand returns (its
    // invocations appear later): a catch-up sent on the last call is never sent twice.
    const prefix = catchUpCommentPrefix(command.commandId);
    const catchUps = (
      await listCommands([
        { key: 'InvokedAfter', value: new Date(command.sentAt - 1000).toISOString() },
        { key: 'DocumentName', value: request.documentName },
      ])
    ).filter((entry) => entry.Comment?.startsWith(prefix));
    const reached = new Set(catchUps.flatMap((entry) => entry.InstanceIds ?? []));
    const toSend: string[] = [];
    for (const host of joined) {
      if (reached.has(host.InstanceId!)) continue;
      if (host.PingStatus === 'Online') toSend.push(host.InstanceId!);
      else log.warn('a fleet host that joined is not Online; its boot deploys the recorded release', { instanceId: host.InstanceId, ping: host.PingStatus });
    }
    let running = false;
    for (const catchUpCommand of catchUps) {
      const outcome = classifyRollOut(catchUpCommand, await listInvocations({ CommandId: catchUpCommand.CommandId }));
      if (outcome.kind === 'running') running = true;
      if (outcome.kind === 'failed') {
        throw new DeployFailedError(
          fleetFailureMessage({
            summary: `the roll-out succeeded on its ${covered.size} hosts, but the catch-up deploy to hosts that joined meanwhile failed: ${outcome.summary}`,
            commandId: catchUpCommand.CommandId ?? '?',
            version: command.version,
            failedHosts: await failedHostDetails(catchUpCommand.CommandId ?? '?', outcome.failed),
            succeeded: [...covered, ...outcome.succeeded],
            untouched: outcome.untouched,
            context: settings,
            outputLogGroupName: settings.outputLogGroupName,
          }),
        );
      }
    }
    if (toSend.length > 0) {
      const input = sendCommandInput(
        request,
        settings,
        { requestType: event.RequestType === 'Create' ? 'Create' : 'Update', logicalResourceId: event.LogicalResourceId },
        { commandId: command.commandId, instanceIds: toSend },
      );
      const sent = await withRetries(() => ssm.send(new SendCommandCommand(input)), deps.now() + IS_COMPLETE_RETRY_MS, retrying('SendCommand'));
      log.info('catch-up sent to hosts that joined during the roll-out', { commandId: sent.Command?.CommandId, instanceIds: toSend });
      return true;
    }
    return running;
  }

  return { onEvent, isComplete };
}
