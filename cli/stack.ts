/**
 * Which instance and document a stack deploys through, read from its outputs. `stackTarget` is
 * pure; `describeStack` is the one CloudFormation call.
 */
import { CloudFormationClient, DescribeStacksCommand, type Output } from '@aws-sdk/client-cloudformation';
import { STACK_OUTPUTS } from '../lib/contract.js';
import { CLI_EXIT_CODES, CliError } from './errors.js';

export { STACK_OUTPUTS };

/** An S3 bucket and a key prefix ('' or ending in '/'). */
export interface S3Location {
  readonly bucket: string;
  readonly prefix: string;
}

export interface StackTarget {
  readonly stackName: string;
  readonly instanceId: string;
  readonly documentName: string;
  /** Where SSM streams the command's output; without it the output arrives when the command ends. */
  readonly outputLogGroupName?: string;
  readonly artifactUploadLocation?: S3Location;
  readonly siteUrl?: string;
}

const S3_LOCATION = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/?([A-Za-z0-9._+/=-]*)$/;

/** `s3://bucket/prefix/` (or `s3://bucket`) as a bucket and a prefix ending in '/'. */
export function parseS3Location(uri: string): S3Location | undefined {
  const match = S3_LOCATION.exec(uri);
  if (match === null) return undefined;
  const prefix = match[2]!;
  return { bucket: match[1]!, prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/` };
}

/**
 * The target from the stack's outputs. Throws naming the stack and every missing output when
 * the stack is not one of ours (or is older than the output this command needs).
 */
export function stackTarget(stackName: string, outputs: readonly Output[] | undefined): StackTarget {
  const byKey = new Map((outputs ?? []).map((output) => [output.OutputKey, output.OutputValue]));
  const value = (key: string) => {
    const found = byKey.get(key)?.trim();
    return found === undefined || found === '' ? undefined : found;
  };
  const instanceId = value(STACK_OUTPUTS.instanceId);
  const documentName = value(STACK_OUTPUTS.documentName);
  const missing = [
    instanceId === undefined ? STACK_OUTPUTS.instanceId : undefined,
    documentName === undefined ? STACK_OUTPUTS.documentName : undefined,
  ].filter((key) => key !== undefined);
  if (missing.length > 0) {
    throw new CliError(
      `stack ${stackName} has no output ${missing.join(' or ')}, so it is not an ec2-bluegreen stack ` +
        `(its outputs: ${byKey.size === 0 ? 'none' : [...byKey.keys()].join(', ')}). Nothing was sent. ` +
        'Name the stack that `cdk deploy` created (Ec2BlueGreen unless you renamed it).',
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
  return {
    stackName,
    instanceId: instanceId!,
    documentName: documentName!,
    ...(outputLogGroupName === undefined ? {} : { outputLogGroupName }),
    ...(artifactUploadLocation === undefined ? {} : { artifactUploadLocation }),
    ...(siteUrl === undefined ? {} : { siteUrl }),
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
