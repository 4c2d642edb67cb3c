/**
 * A deploy rolled across a fleet by tag: before sending, wait until at least one host is Online;
 * after, follow every host's invocation. On success, record the release for hosts that join later,
 * then deploy it to hosts that joined while it ran (SSM resolved the tag when the command was
 * sent), completing once they have it too. A failure names the failed hosts with their output.
 */
import {
  GetCommandInvocationCommand,
  GetParameterCommand,
  ListCommandsCommand,
  paginateDescribeInstanceInformation,
  paginateListCommandInvocations,
  paginateListCommands,
  PutParameterCommand,
  type Command,
  type CommandFilter,
  type CommandInvocation,
  type InstanceInformation,
} from '@aws-sdk/client-ssm';
import { DEPLOYMENT_ATTRIBUTES, RELEASE_RETENTION_TAG } from '../../lib/contract.js';
import { classifyRollOut, fleetFailureMessage, nextFleetRelease, parseFleetRelease, renderFleetRelease, type FailedHost, type FleetRelease } from '../../lib/deploy/fleet.js';
import type { InvocationReport } from '../../lib/deploy/invocation.js';
import { everyPage } from '../../lib/deploy/pages.js';
import { applyRetention, retentionChanges } from '../../lib/deploy/retention.js';
import { withRetries } from '../../lib/deploy/retry.js';
import { catchUpCommentPrefix, readDeploymentRequest, sendCommandInput, type DeploymentRequest, type FleetDeployTarget, type FleetTarget } from '../../lib/deploy/send-command.js';
import { sendCommandOnce, SendOutcomeUnknownError } from '../../lib/deploy/send-once.js';
import { IS_COMPLETE_RETRY_MS, type HandlerContext } from './context.js';
import { DeployFailedError, type IsCompleteEvent, type IsCompleteResult, type SentCommand } from './resource.js';

/** How many failed hosts a roll-out's failure message quotes in full. */
const MAX_DETAILED_HOSTS = 3;

export function fleetRollOut(ctx: HandlerContext) {
  const { ssm, settings, log } = ctx;

  /** The fleet's hosts as Systems Manager knows them (every page). */
  function fleetInstances(fleet: FleetTarget, deadline: number): Promise<InstanceInformation[]> {
    const filters = [{ Key: `tag:${fleet.tagKey}`, Values: [fleet.tagValue] }];
    return withRetries(
      () => everyPage(paginateDescribeInstanceInformation({ client: ssm }, { Filters: filters }), (page) => page.InstanceInformationList),
      deadline,
      ctx.retrying('DescribeInstanceInformation'),
    );
  }

  /** Every host's invocation of a command (every page). */
  function listInvocations(commandId: string | undefined): Promise<CommandInvocation[]> {
    return withRetries(
      () => everyPage(paginateListCommandInvocations({ client: ssm }, { CommandId: commandId }), (page) => page.CommandInvocations),
      ctx.now() + IS_COMPLETE_RETRY_MS,
      ctx.retrying('ListCommandInvocations'),
    );
  }

  /** Commands matching `filters` (every page). */
  function listCommands(filters: CommandFilter[]): Promise<Command[]> {
    return withRetries(
      () => everyPage(paginateListCommands({ client: ssm }, { Filters: filters }), (page) => page.Commands),
      ctx.now() + IS_COMPLETE_RETRY_MS,
      ctx.retrying('ListCommands'),
    );
  }

  /**
   * Until `deadline`: resolves once at least one fleet host is Online. SSM itself sends to the
   * others as they come (a host still booting goes Delayed, then runs the deploy).
   */
  async function waitUntilOnline(fleet: FleetTarget, deadline: number): Promise<void> {
    const started = ctx.now();
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
      if (ctx.now() + pollMs > deadline) {
        const waited = Math.round((ctx.now() - started) / 1000);
        const seen = hosts.map((host) => `${host.InstanceId} ${host.PingStatus}`).join(', ') || 'none registered';
        throw new DeployFailedError(
          `No host with ${target} is Online in Systems Manager after ${waited}s (${seen}), so nothing was sent and the fleet ` +
            'is unchanged. Check the Auto Scaling group has running instances, that SSM Agent runs on them, that their role has ' +
            'AmazonSSMManagedInstanceCore, and that they can reach the SSM endpoints; then deploy again.',
        );
      }
      log.info('waiting for a fleet host to be Online', { target, seen: hosts.length });
      await ctx.sleep(pollMs);
    }
  }

  /** Failed hosts with their output (GetCommandInvocation), the first few only: the message has 4 KB. */
  async function failedHostDetails(commandId: string, failed: ReadonlyArray<{ InstanceId?: string }>): Promise<FailedHost[]> {
    const deadline = ctx.now() + IS_COMPLETE_RETRY_MS;
    const details: FailedHost[] = [];
    for (const host of failed.slice(0, MAX_DETAILED_HOSTS)) {
      const instanceId = host.InstanceId ?? '?';
      const report = await withRetries(
        () => ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId })),
        deadline,
        ctx.retrying('GetCommandInvocation'),
      ).catch(() => host as InvocationReport);
      details.push({ instanceId, report });
    }
    return details;
  }

  /** Records the release for hosts that join later, once per roll-out (the catch-up may poll many times). */
  async function recordRelease(command: SentCommand, fleet: FleetDeployTarget, request: DeploymentRequest): Promise<void> {
    const deadline = ctx.now() + IS_COMPLETE_RETRY_MS;
    const current = await withRetries(
      () => ssm.send(new GetParameterCommand({ Name: fleet.releaseParameterName })),
      deadline,
      ctx.retrying('GetParameter'),
    );
    const recorded = parseFleetRelease(current.Parameter?.Value);
    if (recorded?.commandId === command.commandId) return;
    const next = nextFleetRelease(recorded, {
      artifactUri: request.artifactUri,
      sha256: request.sha256,
      version: request.version ?? '',
      commandId: command.commandId,
      recordedAt: new Date(ctx.now()).toISOString(),
      recordedBy: 'cloudformation',
    });
    const value = renderFleetRelease(next);
    await withRetries(
      () => ssm.send(new PutParameterCommand({ Name: fleet.releaseParameterName, Value: value, Type: 'String', Overwrite: true })),
      deadline,
      ctx.retrying('PutParameter'),
    );
    log.info('release recorded', { parameter: fleet.releaseParameterName, commandId: command.commandId, version: request.version });
    await keepRecordedJars(recorded, next);
  }

  /**
   * The record's jars under the upload location (a release deployed with the operator command is
   * the previous one after a stack update) must outlive its lifecycle rule while recorded; the one
   * the record no longer names may expire again. A tag that cannot be set never fails the deploy.
   */
  async function keepRecordedJars(before: FleetRelease | undefined, after: FleetRelease): Promise<void> {
    const location = settings.uploadLocation;
    if (location === undefined || ctx.s3 === undefined) return;
    for (const { key, tag, error } of await applyRetention(ctx.s3, location, retentionChanges(location, before, after))) {
      log.warn(
        tag === RELEASE_RETENTION_TAG.recorded
          ? 'could not mark a recorded jar as recorded: the upload lifecycle rule may expire it; grant s3:PutObjectTagging or tag it by hand'
          : 'could not mark a jar no longer recorded as unrecorded: it is kept until deleted',
        { object: `s3://${location.bucket}/${key}`, tag, error: `${error.name}: ${error.message}` },
      );
    }
  }

  /** Follows the roll-out on every host; on success records the release and catches up hosts that joined. */
  async function isComplete(event: IsCompleteEvent, command: SentCommand, fleet: FleetDeployTarget): Promise<IsCompleteResult> {
    const elapsedSeconds = Math.round((ctx.now() - command.sentAt) / 1000);
    try {
      const deadline = ctx.now() + IS_COMPLETE_RETRY_MS;
      // One command by its id: one entry, no second page.
      const listed = await withRetries(
        () => ssm.send(new ListCommandsCommand({ CommandId: command.commandId })),
        deadline,
        ctx.retrying('ListCommands'),
      );
      const report = listed.Commands?.find((entry) => entry.CommandId === command.commandId);
      if (report === undefined) {
        ctx.notVisibleTooLong(command, elapsedSeconds);
        return { IsComplete: false };
      }
      const invocations = await listInvocations(command.commandId);
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
      if (ctx.readLater(error, command)) return { IsComplete: false };
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
    const hosts = await fleetInstances(fleet, ctx.now() + IS_COMPLETE_RETRY_MS);
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
      const outcome = classifyRollOut(catchUpCommand, await listInvocations(catchUpCommand.CommandId));
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
      let sent;
      try {
        sent = await sendCommandOnce(ssm, input, { deadlineMs: ctx.now() + IS_COMPLETE_RETRY_MS, retry: ctx.retrying('SendCommand') });
      } catch (error) {
        if (!(error instanceof SendOutcomeUnknownError)) throw error;
        // The next call lists the catch-ups again: it follows this one if it was created after
        // all, and sends to the hosts it does not reach otherwise.
        log.warn('catch-up: the answer to SendCommand was lost; looking again on the next call', { instanceIds: toSend, error: error.message });
        return true;
      }
      log.info('catch-up sent to hosts that joined during the roll-out', { commandId: sent.CommandId, instanceIds: toSend });
      return true;
    }
    return running;
  }

  return { waitUntilOnline, isComplete };
}
