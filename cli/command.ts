/**
 * The SendCommand request for each action, and the checks before it is sent. The request is
 * built like the custom resource's own (lambda/deploy/send-command.ts), with this command's comment.
 */
import { DescribeInstanceInformationCommand, SendCommandCommand, type SendCommandCommandInput, type SSMClient } from '@aws-sdk/client-ssm';
import { DOCUMENT_PARAMS } from '../lib/contract.js';
import { deployParameters, documentRunInput } from '../lambda/deploy/send-command.js';
import type { CommandName } from './args.js';
import type { DeployArtifact } from './artifact.js';
import { CLI_EXIT_CODES, CliError } from './errors.js';
import type { StackTarget } from './stack.js';

/** The document's action for each command: the same name (`history` needs the document's history action). */
export type DocumentRequest =
  | { readonly command: 'deploy'; readonly artifact: DeployArtifact; readonly healthTimeoutSeconds?: number }
  | { readonly command: 'rollback'; readonly healthTimeoutSeconds?: number }
  | { readonly command: 'status' | 'history' };

export interface SendSettings {
  /** SendCommand's `TimeoutSeconds`: how long the command may wait for the instance to pick it up. */
  readonly deliveryTimeoutSeconds: number;
  /** Who asked, for the Run Command console's comment (`user@host`). */
  readonly requestedBy: string;
}

/** The SendCommand input that runs `request` through the stack's document on its instance. */
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
    what = request.command;
  }
  return documentRunInput(
    {
      documentName: target.documentName,
      instanceIds: [target.instanceId],
      deliveryTimeoutSeconds: settings.deliveryTimeoutSeconds,
      outputLogGroupName: target.outputLogGroupName,
      comment: `ec2-bluegreen ${what} by ${settings.requestedBy}`,
    },
    parameters,
  );
}

/**
 * Refuses to send to an instance that is not Online in Systems Manager: the command would sit
 * there until its delivery timeout. Says what SSM knows about it instead.
 */
export async function requireOnline(ssm: SSMClient, target: StackTarget): Promise<void> {
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

/** Sends the command; returns its id. */
export async function send(ssm: SSMClient, input: SendCommandCommandInput, command: CommandName): Promise<string> {
  try {
    const sent = await ssm.send(new SendCommandCommand(input));
    const commandId = sent.Command?.CommandId;
    if (commandId === undefined) throw new Error('SendCommand answered without a command id');
    return commandId;
  } catch (error) {
    const { name, message } = error as Error;
    const hint =
      name === 'InvalidParameters' && command === 'history'
        ? " The stack's document has no 'history' action yet: update the stack (`npx cdk deploy`) to a version that has it."
        : '';
    throw new CliError(
      `Systems Manager refused to run ${input.DocumentName} on ${input.InstanceIds?.join(', ')} (${name}: ${message}). Nothing ran on the host.${hint}`,
      CLI_EXIT_CODES.aws,
    );
  }
}
