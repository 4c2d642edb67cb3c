/**
 * A deploy to one instance: before sending, wait until it is Online in Systems Manager; after,
 * read its one invocation until it ends. Success answers with the live slot and version the
 * host's output names; anything else throws a reason that CloudFormation shows.
 */
import { DescribeInstanceInformationCommand, GetCommandInvocationCommand, ListCommandInvocationsCommand } from '@aws-sdk/client-ssm';
import { DEPLOYMENT_ATTRIBUTES } from '../../lib/contract.js';
import { classifyInvocation, deployResult, failureMessage, type InvocationReport } from '../../lib/deploy/invocation.js';
import { withRetries } from '../../lib/deploy/retry.js';
import { IS_COMPLETE_RETRY_MS, type HandlerContext } from './context.js';
import { DeployFailedError, type IsCompleteResult, type SentCommand } from './resource.js';

export function singleHost(ctx: HandlerContext) {
  const { ssm, settings, log } = ctx;

  /** Until `deadline` (epoch ms): resolves once the instance is Online, else throws why not. */
  async function waitUntilOnline(instanceId: string, deadline: number): Promise<void> {
    const started = ctx.now();
    let lastSeen = 'not registered with Systems Manager';
    for (;;) {
      const info = await withRetries(
        () => ssm.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: 'InstanceIds', Values: [instanceId] }] })),
        deadline,
        ctx.retrying('DescribeInstanceInformation'),
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
      if (ctx.now() + pollMs > deadline) {
        const waited = Math.round((ctx.now() - started) / 1000);
        throw new DeployFailedError(
          `Instance ${instanceId} is not Online in Systems Manager after ${waited}s (it is ${lastSeen}), so nothing was ` +
            `sent and the host is unchanged. Check that the instance is running, that SSM Agent runs on it, that its ` +
            `role has AmazonSSMManagedInstanceCore, and that it can reach the SSM endpoints; then deploy again.`,
        );
      }
      log.info('waiting for the instance to be Online', { instanceId, lastSeen });
      await ctx.sleep(pollMs);
    }
  }

  /** The invocation's state, or undefined while SSM does not show it yet. */
  async function readInvocation(command: SentCommand): Promise<InvocationReport | undefined> {
    const deadline = ctx.now() + IS_COMPLETE_RETRY_MS;
    const ids = { CommandId: command.commandId, InstanceId: command.instanceId! };
    try {
      return await withRetries(() => ssm.send(new GetCommandInvocationCommand(ids)), deadline, ctx.retrying('GetCommandInvocation'));
    } catch (error) {
      if ((error as Error).name !== 'InvocationDoesNotExist') throw error;
    }
    // GetCommandInvocation lags behind right after SendCommand; the list may already know more.
    // One instance of one command is one entry: no second page to read.
    const listed = await withRetries(() => ssm.send(new ListCommandInvocationsCommand(ids)), deadline, ctx.retrying('ListCommandInvocations'));
    const found = listed.CommandInvocations?.find((invocation) => invocation.InstanceId === command.instanceId);
    // The list carries no output and no exit status: a success judged from it would name no live
    // slot. Wait for GetCommandInvocation, which has both; a failure is already final.
    return found?.Status === 'Success' ? undefined : found;
  }

  async function isComplete(command: SentCommand): Promise<IsCompleteResult> {
    let report: InvocationReport | undefined;
    try {
      report = await readInvocation(command);
    } catch (error) {
      if (ctx.readLater(error, command)) return { IsComplete: false };
      throw new DeployFailedError(
        `Cannot read command ${command.commandId} on ${command.instanceId} (${(error as Error).name}: ${(error as Error).message}). ` +
          `The deploy may still be running on the host; check with: aws ssm get-command-invocation ` +
          `--command-id ${command.commandId} --instance-id ${command.instanceId}.`,
      );
    }
    const elapsedSeconds = Math.round((ctx.now() - command.sentAt) / 1000);
    if (report === undefined) {
      ctx.notVisibleTooLong(command, elapsedSeconds);
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

  return { waitUntilOnline, isComplete };
}
