/**
 * The SendCommand request for each action, and the checks before it is sent. The request is
 * built like the custom resource's own (lib/deploy/send-command.ts), with this command's comment.
 */
import { releaseLabel } from '../lib/deploy/fleet.js';
import {
  DescribeInstanceInformationCommand,
  type InstanceInformation,
  paginateDescribeInstanceInformation,
  type SendCommandCommandInput,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { DOCUMENT_PARAMS } from '../lib/contract.js';
import type { FleetRelease } from '../lib/deploy/fleet.js';
import { everyPage } from '../lib/deploy/pages.js';
import type { RetryDependencies } from '../lib/deploy/retry.js';
import { catchUpCommentPrefix, deployParameters, documentRunInput, type FleetTarget } from '../lib/deploy/send-command.js';
import { sendCommandOnce, SendOutcomeUnknownError } from '../lib/deploy/send-once.js';
import type { CommandName } from './args.js';
import type { DeployArtifact } from './artifact.js';
import { CLI_EXIT_CODES, CliError } from './errors.js';
import { fleetName, type FleetStackTarget, type HostStackTarget, type StackTarget } from './stack.js';

/** The document's action for each command: the same name (`history` needs the document's history action). */
export type DocumentRequest =
  | { readonly command: 'deploy'; readonly artifact: DeployArtifact; readonly healthTimeoutSeconds?: number }
  | {
      readonly command: 'rollback';
      readonly healthTimeoutSeconds?: number;
      /**
       * Fleet only: the release recorded before the current one, which a host whose warm standby
       * it is not (a host the Auto Scaling group added boots the recorded release alone) deploys
       * instead of failing with "nothing to switch to". @default - none: such a host fails
       */
      readonly previous?: { readonly artifactUri: string; readonly sha256: string; readonly version: string };
    }
  | { readonly command: 'status' | 'history' };

export interface SendSettings {
  /** SendCommand's `TimeoutSeconds`: how long the command may wait for the instance to pick it up. */
  readonly deliveryTimeoutSeconds: number;
  /** Who asked, for the Run Command console's comment (`user@host`). */
  readonly requestedBy: string;
  /** Fleet only: how many hosts run it at once. @default - the stack's FleetMaxConcurrency */
  readonly maxConcurrency?: string;
}

/**
 * What `status` and `history` run at on a fleet: they only read, so every host at once (SSM's
 * own rate control still ramps up).
 */
export const READ_ONLY_MAX_CONCURRENCY = '100%';

/**
 * The SendCommand input that runs `request` through the stack's document on its instance, or on
 * every host of its fleet by tag (`MaxErrors` 0: the first failing host stops the roll-out).
 */
export function documentCommandInput(target: StackTarget, request: DocumentRequest, settings: SendSettings): SendCommandCommandInput {
  let parameters: Record<string, string[]>;
  let what: string;
  if (request.command === 'deploy') {
    const { artifact } = request;
    parameters = deployParameters({
      artifactUri: artifact.uri,
      sha256: artifact.sha256,
      version: artifact.version,
      healthTimeoutSeconds: request.healthTimeoutSeconds,
    });
    what = `deploy ${artifact.version}`;
  } else {
    parameters = { [DOCUMENT_PARAMS.action]: [request.command] };
    if (request.command === 'rollback' && request.healthTimeoutSeconds !== undefined) {
      parameters[DOCUMENT_PARAMS.healthTimeout] = [String(request.healthTimeoutSeconds)];
    }
    if (request.command === 'rollback' && request.previous !== undefined) {
      // The document's rollback deploys it where there is no standby to switch to.
      parameters[DOCUMENT_PARAMS.artifactUri] = [request.previous.artifactUri];
      parameters[DOCUMENT_PARAMS.sha256] = [request.previous.sha256];
      parameters[DOCUMENT_PARAMS.version] = [request.previous.version];
    }
    what = request.command;
  }
  return documentRunInput(
    {
      documentName: target.documentName,
      ...(target.fleet === undefined
        ? { instanceIds: [target.instanceId] }
        : { fleet: fleetRunTarget(target.fleet, settings.maxConcurrency ?? (request.command === 'status' || request.command === 'history' ? READ_ONLY_MAX_CONCURRENCY : target.fleet.maxConcurrency)) }),
      deliveryTimeoutSeconds: settings.deliveryTimeoutSeconds,
      outputLogGroupName: target.outputLogGroupName,
      comment: `ec2-bluegreen ${what} by ${settings.requestedBy}`,
    },
    parameters,
  );
}

function fleetRunTarget(fleet: FleetTarget, maxConcurrency: string): FleetTarget {
  return { tagKey: fleet.tagKey, tagValue: fleet.tagValue, maxConcurrency };
}

/**
 * The deploy of the recorded release to fleet hosts that a roll-out did not reach (they joined
 * while it ran): by instance id, with the custom resource's catch-up comment, so either finds it.
 */
export function catchUpCommandInput(
  target: FleetStackTarget,
  release: FleetRelease,
  rollOutCommandId: string,
  instanceIds: readonly string[],
  settings: SendSettings,
): SendCommandCommandInput {
  return documentRunInput(
    {
      documentName: target.documentName,
      instanceIds,
      deliveryTimeoutSeconds: settings.deliveryTimeoutSeconds,
      outputLogGroupName: target.outputLogGroupName,
      comment: `${catchUpCommentPrefix(rollOutCommandId)} deploy ${releaseLabel(release)} by ${settings.requestedBy}`,
    },
    deployParameters({ artifactUri: release.artifactUri, sha256: release.sha256, version: release.version }),
  );
}

/** Where a SendCommand input runs, for messages. */
export function describeWhere(input: SendCommandCommandInput): string {
  const tag = input.Targets?.find((target) => target.Key?.startsWith('tag:'));
  return tag === undefined ? (input.InstanceIds ?? []).join(', ') : `the hosts tagged ${tag.Key!.slice('tag:'.length)}=${(tag.Values ?? []).join(',')}`;
}

/**
 * The fleet's hosts as Systems Manager knows them (every page); refuses, with nothing sent, when
 * none is Online: SSM would wait on them until the delivery timeout.
 */
export async function requireFleetOnline(ssm: SSMClient, target: FleetStackTarget): Promise<InstanceInformation[]> {
  const hosts = await fleetHosts(ssm, target).catch((error: Error) => {
    throw new CliError(
      `cannot ask Systems Manager which hosts carry tag ${target.fleet.tagKey}=${target.fleet.tagValue} (${error.name}: ${error.message}). Nothing was sent.`,
      CLI_EXIT_CODES.aws,
    );
  });
  if (hosts.some((host) => host.PingStatus === 'Online')) return hosts;
  const seen = hosts.map((host) => `${host.InstanceId} ${host.PingStatus}`).join(', ') || 'none registered';
  throw new CliError(
    `no host of ${fleetName(target)} is Online in Systems Manager (${seen}), ` +
      'so nothing was sent and the fleet is unchanged. Check that the Auto Scaling group has running instances (a new one takes a few ' +
      'minutes to register) and that SSM Agent on them can reach Systems Manager.',
    CLI_EXIT_CODES.aws,
  );
}

/** Every host carrying the fleet's tag that Systems Manager knows, Online or not. */
export async function fleetHosts(ssm: SSMClient, target: FleetStackTarget): Promise<InstanceInformation[]> {
  const filters = [{ Key: `tag:${target.fleet.tagKey}`, Values: [target.fleet.tagValue] }];
  const found = await everyPage(paginateDescribeInstanceInformation({ client: ssm }, { Filters: filters }), (page) => page.InstanceInformationList);
  return found.sort((a, b) => (a.InstanceId ?? '').localeCompare(b.InstanceId ?? ''));
}

/**
 * Refuses to send to an instance that is not Online in Systems Manager: the command would sit
 * there until its delivery timeout. Says what SSM knows about it instead.
 */
export async function requireOnline(ssm: SSMClient, target: HostStackTarget): Promise<void> {
  let pingStatus: string | undefined;
  let lastPing: Date | undefined;
  try {
    const info = await ssm.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: 'InstanceIds', Values: [target.instanceId] }] }));
    const instance = info.InstanceInformationList?.find((entry) => entry.InstanceId === target.instanceId);
    pingStatus = instance?.PingStatus;
    lastPing = instance?.LastPingDateTime;
  } catch (error) {
    const { name, message } = error as Error;
    throw new CliError(`cannot ask Systems Manager about ${target.instanceId} (${name}: ${message}). Nothing was sent.`, CLI_EXIT_CODES.aws);
  }
  if (pingStatus === 'Online') return;
  const state = pingStatus === undefined ? 'not registered with Systems Manager' : `${pingStatus} (last ping ${lastPing?.toISOString() ?? 'never'})`;
  throw new CliError(
    `instance ${target.instanceId} of stack ${target.stackName} is ${state}, so nothing was sent and the host is unchanged. ` +
      'Check that the instance is running (a new one takes a few minutes to register) and that SSM Agent can reach Systems Manager.',
    CLI_EXIT_CODES.aws,
  );
}

/** How long `send` retries throttling, SSM's own failures and dropped connections. */
export const SEND_RETRY_SECONDS = 60;

/** The real clock for `send`'s retries. */
const REAL_TIME: RetryDependencies = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: () => Math.random(),
};

/**
 * Sends the command at most once (lib/deploy/send-once.ts: a lost answer is followed by a search
 * for the command, not by a second send); returns its id.
 */
export async function send(ssm: SSMClient, input: SendCommandCommandInput, command: CommandName, time: RetryDependencies = REAL_TIME): Promise<string> {
  try {
    // The operator's rights are what they are: a denial is a refusal at once, never "propagation".
    const sent = await sendCommandOnce(ssm, input, { deadlineMs: time.now() + SEND_RETRY_SECONDS * 1000, retry: { ...time, iamPropagationSeconds: 0 } });
    return sent.CommandId!;
  } catch (error) {
    if (error instanceof SendOutcomeUnknownError) {
      throw new CliError(
        `Systems Manager may or may not have accepted ${input.DocumentName} for ${describeWhere(input)}: ${error.message}. ` +
          `The ${command} may still run: look for it with ${error.findCommand}, and follow it with 'ec2-bluegreen status'; ` +
          `if there is none, run the same command again.`,
        CLI_EXIT_CODES.aws,
      );
    }
    const { name, message } = error as Error;
    const hint =
      name === 'InvalidParameters' && command === 'history'
        ? " The stack's document has no 'history' action yet: update the stack (`npx cdk deploy`) to a version that has it."
        : '';
    throw new CliError(
      `Systems Manager refused to run ${input.DocumentName} on ${describeWhere(input)} (${name}: ${message}). Nothing ran on the host${input.Targets === undefined ? '' : 's'}.${hint}`,
      CLI_EXIT_CODES.aws,
    );
  }
}
