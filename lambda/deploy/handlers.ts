/**
 * The deploy custom resource's two handlers for the CDK Provider framework, built from their
 * dependencies (SSM client, clock, sleep, settings, logger) so that tests can pass their own.
 *
 * onEvent (Create, Update): waits until the instance (or a fleet host) is Online in Systems
 * Manager, sends the deploy document once, and hands the command id to isComplete. Delete
 * touches nothing. isComplete: follows the command until it ends, on one host
 * (single-host.ts) or across the fleet (fleet-roll-out.ts); success returns the live slot and
 * version, anything else throws a reason that CloudFormation shows.
 */
import { readDeploymentRequest, sendCommandInput, type DeploymentRequest } from '../../lib/deploy/send-command.js';
import { sendCommandOnce, SendOutcomeUnknownError } from '../../lib/deploy/send-once.js';
import { SEND_ALLOWANCE_SECONDS } from '../../lib/deploy/timeouts.js';
import { handlerContext, type HandlerDependencies } from './context.js';
import { fleetRollOut } from './fleet-roll-out.js';
import {
  DeployFailedError,
  type CustomResourceEvent,
  type InvocationContext,
  type IsCompleteEvent,
  type IsCompleteResult,
  type OnEventResult,
} from './resource.js';
import { singleHost } from './single-host.js';

export type { HandlerDependencies } from './context.js';

/** Keeps a call this long away from the Lambda timeout, so the function can still answer. */
const LAMBDA_MARGIN_MS = 10_000;

export function createHandlers(deps: HandlerDependencies) {
  const ctx = handlerContext(deps);
  const { ssm, settings, log } = ctx;
  const host = singleHost(ctx);
  const fleet = fleetRollOut(ctx);

  /** Sends the deploy document once the instance (or a fleet host) is Online; returns the command id. */
  async function send(request: DeploymentRequest, event: CustomResourceEvent, deadline: number, lambdaEnd: number): Promise<string> {
    const input = sendCommandInput(request, settings, {
      requestType: event.RequestType === 'Create' ? 'Create' : 'Update',
      logicalResourceId: event.LogicalResourceId,
    });
    const where = request.fleet === undefined ? request.instanceId! : `the hosts tagged ${request.fleet.tagKey}=${request.fleet.tagValue}`;
    for (;;) {
      if (request.fleet === undefined) await host.waitUntilOnline(request.instanceId!, deadline);
      else await fleet.waitUntilOnline(request.fleet, deadline);
      try {
        const sendDeadline = Math.min(ctx.now() + SEND_ALLOWANCE_SECONDS * 1000, lambdaEnd);
        const sent = await sendCommandOnce(ssm, input, { deadlineMs: sendDeadline, retry: ctx.retrying('SendCommand') });
        return sent.CommandId!;
      } catch (error) {
        if (error instanceof SendOutcomeUnknownError) {
          throw new DeployFailedError(
            `Systems Manager may or may not have accepted ${request.documentName} for ${where}: ${error.message}. The deploy may ` +
              `still run on the ${request.fleet === undefined ? 'host' : 'hosts'}: look for the command with ${error.findCommand}, ` +
              'and follow it (or, if there is none, deploy again).',
          );
        }
        const name = (error as Error).name;
        // Online in one API and not yet in another for a moment after registration.
        if (name === 'InvalidInstanceId' && ctx.now() + settings.onlinePollSeconds * 1000 <= deadline) {
          log.warn('SendCommand does not accept the instance yet; waiting', { instanceId: request.instanceId, error });
          await ctx.sleep(settings.onlinePollSeconds * 1000);
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
    const started = ctx.now();
    const lambdaEnd = started + (context?.getRemainingTimeInMillis() ?? Number.POSITIVE_INFINITY) - LAMBDA_MARGIN_MS;
    const deadline = Math.min(started + settings.onlineWaitSeconds * 1000, lambdaEnd - SEND_ALLOWANCE_SECONDS * 1000);
    const commandId = await send(request, event, deadline, lambdaEnd);
    log.info('deploy sent', { commandId, instanceId: request.instanceId, fleet: request.fleet, version: request.version, waitedMs: ctx.now() - started });
    return {
      PhysicalResourceId: physicalResourceId,
      BlueGreenCommand: {
        commandId,
        ...(request.fleet === undefined ? { instanceId: request.instanceId } : { fleet: request.fleet }),
        sentAt: ctx.now(),
        version: request.version,
      },
    };
  }

  async function isComplete(event: IsCompleteEvent): Promise<IsCompleteResult> {
    const command = event.BlueGreenCommand;
    if (event.RequestType === 'Delete' || command === undefined) return { IsComplete: true };
    if (command.fleet !== undefined) return fleet.isComplete(event, command, command.fleet);
    return host.isComplete(command);
  }

  return { onEvent, isComplete };
}
