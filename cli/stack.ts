/**
 * Which instance (or fleet) and document a stack deploys through, read from its outputs, or
 * for a fleet from the FLEET_* variables that hold those outputs on the fleet's Jenkins.
 * `stackTarget` and `fleetFromEnvironment` are pure and check alike; `describeStack` is the one
 * CloudFormation call.
 */
import { CloudFormationClient, DescribeStacksCommand, type Output } from '@aws-sdk/client-cloudformation';
import { MAX_CONCURRENCY_PATTERN, STACK_OUTPUTS } from '../lib/contract.js';
import type { FleetDeployTarget } from '../lib/deploy/send-command.js';
import { REGION } from './args.js';
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
  /**
   * Read from the FLEET_* variables (`--fleet-from-env`), not from a stack: `stackName` is then
   * only a label, and a command line names the target again with `--fleet-from-env`.
   * @default - read from the stack's outputs
   */
  readonly fromEnvironment?: true;
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
 * Where a target's values were read, so that messages name a value as its source does. A wrong
 * stack output is the stack's fault (update it); a wrong variable is a setting to fix.
 */
interface ValueSource {
  /** `stack NAME's output KEY`, or the variable that holds output KEY. */
  readonly describe: (key: string) => string;
  /** How the list of unusable fleet values names output KEY. */
  readonly name: (key: string) => string;
  /** Opens the message that lists unusable fleet values. */
  readonly unusable: string;
  /** What to do about an unusable value. */
  readonly remedy: string;
  readonly exitCode: number;
}

function stackOutputs(stackName: string): ValueSource {
  return {
    describe: (key) => `stack ${stackName}'s output ${key}`,
    name: (key) => key,
    unusable: `stack ${stackName} is a fleet stack, but its outputs are not usable`,
    remedy: 'Update the stack (`npx cdk deploy`) with this version of the project, which writes them.',
    exitCode: CLI_EXIT_CODES.aws,
  };
}

/**
 * The target from the stack's outputs: one instance (`InstanceId`) or a fleet (`FleetTarget`,
 * with `FleetReleaseParameter` and `FleetMaxConcurrency`). Throws naming the stack and what is
 * wrong when the stack is not one of ours, names both or neither, or an output does not parse.
 */
export function stackTarget(stackName: string, outputs: readonly Output[] | undefined): StackTarget {
  return targetOf(stackName, outputs, stackOutputs(stackName));
}

function targetOf(stackName: string, outputs: readonly Output[] | undefined, source: ValueSource): StackTarget {
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
    throw new CliError(`${source.describe(STACK_OUTPUTS.artifactUploadLocation)} is ${JSON.stringify(uploadUri)}, not an s3://BUCKET/PREFIX/ location.`, source.exitCode);
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
  return { ...parts, fleet: fleetOf(fleetTarget!, value(STACK_OUTPUTS.fleetMaxConcurrency), value(STACK_OUTPUTS.fleetReleaseParameter), source) };
}

/** SSM's `tag:KEY=VALUE` target, as the stack's FleetTarget output writes it. */
const FLEET_TARGET = /^tag:([A-Za-z0-9_.:/+@-]{1,128})=([A-Za-z0-9_.:/=+@-]{1,256})$/;
/** An SSM parameter name (a path, or a plain name). */
const PARAMETER_NAME = /^\/?[A-Za-z0-9_.\/-]{1,1011}$/;

/** The fleet outputs, checked: a value that would make SSM send to the wrong hosts (or to none) fails here. */
function fleetOf(target: string, maxConcurrency: string | undefined, releaseParameterName: string | undefined, source: ValueSource): FleetDeployTarget {
  const problems: string[] = [];
  const tag = FLEET_TARGET.exec(target);
  if (tag === null) problems.push(`${source.name(STACK_OUTPUTS.fleetTarget)} is ${JSON.stringify(target)}, not tag:KEY=VALUE`);
  if (maxConcurrency !== undefined && !new RegExp(MAX_CONCURRENCY_PATTERN).test(maxConcurrency)) {
    problems.push(`${source.name(STACK_OUTPUTS.fleetMaxConcurrency)} is ${JSON.stringify(maxConcurrency)}, not a number of hosts or a percentage`);
  }
  const parameter = source.name(STACK_OUTPUTS.fleetReleaseParameter);
  if (releaseParameterName === undefined) problems.push(`${parameter} is missing (where the fleet's release is recorded)`);
  else if (!PARAMETER_NAME.test(releaseParameterName)) problems.push(`${parameter} is ${JSON.stringify(releaseParameterName)}, not an SSM parameter name`);
  if (problems.length > 0) {
    throw new CliError(`${source.unusable}: ${problems.join('; ')}. Nothing was sent. ${source.remedy}`, source.exitCode);
  }
  return {
    tagKey: tag![1]!,
    tagValue: tag![2]!,
    // The stack's own default when an older stack has no such output.
    maxConcurrency: maxConcurrency ?? '1',
    releaseParameterName: releaseParameterName!,
  };
}

/**
 * The FLEET_* variables that hold a fleet stack's outputs (and its region): the fleet's Jenkins
 * has them as global variables, which configure-jenkins renders from the settings the stack
 * writes (assets/jenkins/jenkins.yaml.tmpl).
 */
export const FLEET_VARIABLES = {
  region: 'FLEET_REGION',
  [STACK_OUTPUTS.documentName]: 'FLEET_DOCUMENT',
  [STACK_OUTPUTS.fleetTarget]: 'FLEET_TARGET',
  [STACK_OUTPUTS.fleetMaxConcurrency]: 'FLEET_MAX_CONCURRENCY',
  [STACK_OUTPUTS.fleetReleaseParameter]: 'FLEET_RELEASE_PARAMETER',
  [STACK_OUTPUTS.artifactUploadLocation]: 'FLEET_UPLOAD_LOCATION',
  [STACK_OUTPUTS.outputLogGroup]: 'FLEET_OUTPUT_LOG_GROUP',
} as const;

/** The variables a fleet deploy cannot do without; FLEET_MAX_CONCURRENCY defaults as a stack's output does (1). */
const REQUIRED_FLEET_VARIABLES = [
  STACK_OUTPUTS.documentName,
  STACK_OUTPUTS.fleetTarget,
  STACK_OUTPUTS.fleetReleaseParameter,
  STACK_OUTPUTS.artifactUploadLocation,
] as const;

/** What `stackName` says for a target read from the FLEET_* variables (a label, not a stack). */
export const FLEET_VARIABLES_LABEL = 'FLEET_*';

/**
 * The fleet target from the FLEET_* variables in `env`, checked exactly as a fleet stack's
 * outputs are (`stackTarget`), and the region FLEET_REGION names, if any. A missing or wrong
 * variable is a usage error (exit 2) naming it, with nothing sent.
 */
export function fleetFromEnvironment(env: Readonly<Record<string, string | undefined>>): { readonly target: FleetStackTarget; readonly region?: string } {
  type Key = keyof typeof FLEET_VARIABLES;
  const variable = (key: string) => FLEET_VARIABLES[key as Key] ?? key;
  const read = (key: Key) => {
    const found = env[FLEET_VARIABLES[key]]?.trim();
    return found === undefined || found === '' ? undefined : found;
  };
  const setting = (it: string, variable: string) =>
    `The fleet's Jenkins has ${it} as ${variable} (Manage Jenkins > System > Global properties), from the stack's settings; ` +
    `elsewhere, set ${it} from the fleet stack's outputs`;
  const missing = REQUIRED_FLEET_VARIABLES.filter((key) => read(key) === undefined).map(variable);
  if (missing.length > 0) {
    const one = missing.length === 1;
    throw new CliError(
      `--fleet-from-env needs ${missing.join(', ')}, which ${one ? 'is' : 'are'} not set. Nothing was sent. ${setting(one ? 'it' : 'them', one ? 'a global variable' : 'global variables')}.`,
      CLI_EXIT_CODES.usage,
    );
  }
  const region = read('region');
  if (region !== undefined && !REGION.test(region)) {
    throw new CliError(`FLEET_REGION is ${JSON.stringify(region)}, not an AWS region such as us-east-1. Nothing was sent.`, CLI_EXIT_CODES.usage);
  }
  const outputs = (Object.keys(FLEET_VARIABLES) as Key[])
    .filter((key) => key !== 'region')
    .map((key) => ({ OutputKey: key, OutputValue: read(key) }));
  const target = targetOf(FLEET_VARIABLES_LABEL, outputs, {
    describe: variable,
    name: variable,
    unusable: 'the FLEET_* variables are not usable',
    remedy: `Fix the variable. ${setting('it', 'a global variable')}.`,
    exitCode: CLI_EXIT_CODES.usage,
  });
  // Only a fleet: the variables have no InstanceId, and FLEET_TARGET is required.
  return { target: { ...(target as FleetStackTarget), fromEnvironment: true }, ...(region === undefined ? {} : { region }) };
}

/** How messages name a fleet: `stack NAME (tag KEY=VALUE)`, or `tag KEY=VALUE (FLEET_TARGET)`. */
export function fleetName(target: FleetStackTarget): string {
  const tag = `${target.fleet.tagKey}=${target.fleet.tagValue}`;
  return target.fromEnvironment ? `tag ${tag} (${FLEET_VARIABLES[STACK_OUTPUTS.fleetTarget]})` : `stack ${target.stackName} (tag ${tag})`;
}

/** The options that name the target again on a command line, for the advice in messages. */
export function targetOptions(target: StackTarget): string {
  return target.fleet !== undefined && target.fromEnvironment ? '--fleet-from-env' : `--stack ${target.stackName}`;
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
