/**
 * Which instance (or fleet) and document a stack deploys through, read from its outputs.
 * `stackTarget` is pure; `describeStack` is the one CloudFormation call.
 */
import { CloudFormationClient, DescribeStacksCommand, type Output } from '@aws-sdk/client-cloudformation';
import { MAX_CONCURRENCY_PATTERN, STACK_OUTPUTS } from '../lib/contract.js';
import type { FleetDeployTarget } from '../lib/deploy/send-command.js';
import { CLI_EXIT_CODES, CliError } from './errors.js';

export { STACK_OUTPUTS };

/** An S3 bucket and a key prefix ('' or ending in '/'). */
export interface S3Location {
  readonly bucket: string;
  readonly prefix: string;
}

interface StackParts {
  readonly stackName: string;
  readonly documentName: string;
  /** Where SSM streams the command's output; without it the output arrives when the command ends. */
  readonly outputLogGroupName?: string;
  readonly artifactUploadLocation?: S3Location;
  readonly siteUrl?: string;
}

/** A stack of one host (output `InstanceId`). */
export interface HostStackTarget extends StackParts {
  readonly instanceId: string;
  readonly fleet?: undefined;
}

/** A fleet stack (output `FleetTarget`): every host carrying the tag, and where its release is recorded. */
export interface FleetStackTarget extends StackParts {
  readonly fleet: FleetDeployTarget;
  readonly instanceId?: undefined;
}

export type StackTarget = HostStackTarget | FleetStackTarget;

const S3_LOCATION = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/?([A-Za-z0-9._+/=-]*)$/;

/** `s3://bucket/prefix/` (or `s3://bucket`) as a bucket and a prefix ending in '/'. */
export function parseS3Location(uri: string): S3Location | undefined {
  const match = S3_LOCATION.exec(uri);
  if (match === null) return undefined;
  const prefix = match[2]!;
  return { bucket: match[1]!, prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/` };
}

/**
 * The target from the stack's outputs: one instance (`InstanceId`) or a fleet (`FleetTarget`,
 * with `FleetReleaseParameter` and `FleetMaxConcurrency`). Throws naming the stack and what is
 * wrong when the stack is not one of ours, names both or neither, or an output does not parse.
 */
export function stackTarget(stackName: string, outputs: readonly Output[] | undefined): StackTarget {
  const byKey = new Map((outputs ?? []).map((output) => [output.OutputKey, output.OutputValue]));
  const value = (key: string) => {
    const found = byKey.get(key)?.trim();
    return found === undefined || found === '' ? undefined : found;
  };
  const instanceId = value(STACK_OUTPUTS.instanceId);
  const fleetTarget = value(STACK_OUTPUTS.fleetTarget);
  const documentName = value(STACK_OUTPUTS.documentName);
  const missing = [
    instanceId === undefined && fleetTarget === undefined ? STACK_OUTPUTS.instanceId : undefined,
    documentName === undefined ? STACK_OUTPUTS.documentName : undefined,
  ].filter((key) => key !== undefined);
  if (missing.length > 0) {
    throw new CliError(
      `stack ${stackName} has no output ${missing.join(' or ')}, so it is not an ec2-bluegreen stack ` +
        `(its outputs: ${byKey.size === 0 ? 'none' : [...byKey.keys()].join(', ')}). Nothing was sent. ` +
        'Name the stack that `cdk deploy` created (Ec2BlueGreen unless you renamed it); a fleet stack has ' +
        `${STACK_OUTPUTS.fleetTarget} instead of ${STACK_OUTPUTS.instanceId}.`,
      CLI_EXIT_CODES.aws,
    );
  }
  if (instanceId !== undefined && fleetTarget !== undefined) {
    throw new CliError(
      `stack ${stackName} has both outputs ${STACK_OUTPUTS.instanceId} (${instanceId}) and ${STACK_OUTPUTS.fleetTarget} (${fleetTarget}), ` +
        'so it is unclear whether to deploy to one host or to the fleet. Nothing was sent. An ec2-bluegreen stack has one of them: ' +
        'check that the stack was deployed from this project, and that nothing added the other output.',
      CLI_EXIT_CODES.aws,
    );
  }
  const uploadUri = value(STACK_OUTPUTS.artifactUploadLocation);
  const artifactUploadLocation = uploadUri === undefined ? undefined : parseS3Location(uploadUri);
  if (uploadUri !== undefined && artifactUploadLocation === undefined) {
    throw new CliError(`stack ${stackName}'s output ${STACK_OUTPUTS.artifactUploadLocation} is ${JSON.stringify(uploadUri)}, not an s3://BUCKET/PREFIX/ location.`, CLI_EXIT_CODES.aws);
  }
  const outputLogGroupName = value(STACK_OUTPUTS.outputLogGroup);
  const siteUrl = value(STACK_OUTPUTS.siteUrl);
  const parts: StackParts = {
    stackName,
    documentName: documentName!,
    ...(outputLogGroupName === undefined ? {} : { outputLogGroupName }),
    ...(artifactUploadLocation === undefined ? {} : { artifactUploadLocation }),
    ...(siteUrl === undefined ? {} : { siteUrl }),
  };
  if (instanceId !== undefined) {
    const { stackName: name, documentName: document, ...rest } = parts;
    // The single host's target keeps the shape (and key order) it always had.
    return { stackName: name, instanceId, documentName: document, ...rest };
  }
  return { ...parts, fleet: fleetOf(stackName, fleetTarget!, value(STACK_OUTPUTS.fleetMaxConcurrency), value(STACK_OUTPUTS.fleetReleaseParameter)) };
}

/** SSM's `tag:KEY=VALUE` target, as the stack's FleetTarget output writes it. */
const FLEET_TARGET = /^tag:([A-Za-z0-9_.:/+@-]{1,128})=([A-Za-z0-9_.:/=+@-]{1,256})$/;
/** An SSM parameter name (a path, or a plain name). */
const PARAMETER_NAME = /^\/?[A-Za-z0-9_.\/-]{1,1011}$/;

/** The fleet outputs, checked: a value that would make SSM send to the wrong hosts (or to none) fails here. */
export function fleetOf(stackName: string, target: string, maxConcurrency: string | undefined, releaseParameterName: string | undefined): FleetDeployTarget {
  const problems: string[] = [];
  const tag = FLEET_TARGET.exec(target);
  if (tag === null) problems.push(`${STACK_OUTPUTS.fleetTarget} is ${JSON.stringify(target)}, not tag:KEY=VALUE`);
  if (maxConcurrency !== undefined && !new RegExp(MAX_CONCURRENCY_PATTERN).test(maxConcurrency)) {
    problems.push(`${STACK_OUTPUTS.fleetMaxConcurrency} is ${JSON.stringify(maxConcurrency)}, not a number of hosts or a percentage`);
  }
  if (releaseParameterName === undefined) problems.push(`${STACK_OUTPUTS.fleetReleaseParameter} is missing (where the fleet's release is recorded)`);
  else if (!PARAMETER_NAME.test(releaseParameterName)) problems.push(`${STACK_OUTPUTS.fleetReleaseParameter} is ${JSON.stringify(releaseParameterName)}, not an SSM parameter name`);
  if (problems.length > 0) {
    throw new CliError(
      `stack ${stackName} is a fleet stack, but its outputs are not usable: ${problems.join('; ')}. Nothing was sent. ` +
        'Update the stack (`npx cdk deploy`) with this version of the project, which writes them.',
      CLI_EXIT_CODES.aws,
    );
  }
  return {
    tagKey: tag![1]!,
    tagValue: tag![2]!,
    // The stack's own default when an older stack has no such output.
    maxConcurrency: maxConcurrency ?? '1',
    releaseParameterName: releaseParameterName!,
  };
}

/** Reads the stack's outputs; a stack that does not exist is a `CliError` that says where it looked. */
export async function describeStack(cloudFormation: CloudFormationClient, stackName: string, region: string): Promise<StackTarget> {
  try {
    const answer = await cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }));
    const stack = answer.Stacks?.[0];
    if (stack === undefined) throw new CliError(`stack ${stackName} does not exist in ${region}.`, CLI_EXIT_CODES.aws);
    return stackTarget(stack.StackName ?? stackName, stack.Outputs);
  } catch (error) {
    if (error instanceof CliError) throw error;
    const { name, message } = error as Error;
    if (name === 'ValidationError' && /does not exist/.test(message)) {
      throw new CliError(
        `stack ${stackName} does not exist in ${region} (for this account's credentials). Nothing was sent. ` +
          'Check the name (`aws cloudformation list-stacks`) and the region (--region or AWS_REGION).',
        CLI_EXIT_CODES.aws,
      );
    }
    throw new CliError(`cannot read stack ${stackName} in ${region} (${name}: ${message}). Nothing was sent.`, CLI_EXIT_CODES.aws);
  }
}
