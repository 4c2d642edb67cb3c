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
  ListCommandInvocationsCommand,
  SendCommandCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { DEPLOYMENT_ATTRIBUTES } from '../../lib/contract.js';
import { classifyInvocation, deployResult, failureMessage, type InvocationReport } from './invocation.js';
import type { Logger } from './log.js';
import { IAM_PROPAGATION_SECONDS, retryReason, withRetries, type RetryDependencies } from './retry.js';
import { readDeploymentRequest, sendCommandInput, type DeploymentRequest } from './send-command.js';
import type { DeploySettings } from './settings.js';
import { invisibleInvocationLimitSeconds, SEND_ALLOWANCE_SECONDS } from './timeouts.js';

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
  readonly instanceId: string;
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

  /** Sends the deploy document once the instance is Online; returns the command id. */
  async function send(request: DeploymentRequest, event: CustomResourceEvent, deadline: number, lambdaEnd: number): Promise<string> {
    const input = sendCommandInput(request, settings, {
      requestType: event.RequestType === 'Create' ? 'Create' : 'Update',
      logicalResourceId: event.LogicalResourceId,
    });
    for (;;) {
      await waitUntilOnline(request.instanceId, deadline);
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
          `Systems Manager refused to run ${request.documentName} on ${request.instanceId} ` +
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
    log.info('deploy sent', { commandId, instanceId: request.instanceId, version: request.version, waitedMs: deps.now() - started });
    return {
      PhysicalResourceId: physicalResourceId,
      BlueGreenCommand: { commandId, instanceId: request.instanceId, sentAt: deps.now(), version: request.version },
    };
  }

  /** The invocation's state, or undefined while SSM does not show it yet. */
  async function readInvocation(command: SentCommand): Promise<InvocationReport | undefined> {
    const deadline = deps.now() + IS_COMPLETE_RETRY_MS;
    const ids = { CommandId: command.commandId, InstanceId: command.instanceId };
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

    let report: InvocationReport | undefined;
    try {
      report = await readInvocation(command);
    } catch (error) {
      // Throttled past this call's retries: the provider calls again after its query interval.
      const reason = retryReason(error);
      const stillPropagating = deps.now() - command.sentAt < IAM_PROPAGATION_SECONDS * 1000;
      if (reason === 'throttled' || reason === 'service-error' || (reason === 'iam-propagation' && stillPropagating)) {
        log.warn('cannot read the invocation now; asking again next time', { commandId: command.commandId, error });
        return { IsComplete: false };
      }
      throw new DeployFailedError(
        `Cannot read command ${command.commandId} on ${command.instanceId} (${(error as Error).name}: ${(error as Error).message}). ` +
          `The deploy may still be running on the host; check with: aws ssm get-command-invocation ` +
          `--command-id ${command.commandId} --instance-id ${command.instanceId}.`,
      );
    }
    const elapsedSeconds = Math.round((deps.now() - command.sentAt) / 1000);
    if (report === undefined) {
      const limit = invisibleInvocationLimitSeconds(settings.deliveryTimeoutSeconds);
      if (elapsedSeconds > limit) {
        throw new DeployFailedError(
          `Systems Manager has no invocation of command ${command.commandId} on ${command.instanceId} ${elapsedSeconds}s ` +
            `after it was sent, so the deploy never started; the host is unchanged. Deploy again.`,
        );
      }
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
        instanceId: command.instanceId,
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

  return { onEvent, isComplete };
}
