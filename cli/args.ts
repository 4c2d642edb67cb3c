/**
 * The command line of `ec2-bluegreen`, parsed and checked before any AWS call. Pure: every
 * value that reaches the SSM document is checked here against the document's own
 * `allowedPattern` (lib/contract.ts), so a typo fails at once with the option's name.
 */
import { parseArgs } from 'node:util';
import { DOCUMENT_ACTIONS, DOCUMENT_HISTORY_LIMIT, DOCUMENT_PARAM_PATTERNS, MAX_CONCURRENCY_PATTERN, type DocumentAction } from '../lib/contract.js';
import { CLI_EXIT_CODES, CliError } from './errors.js';

/** Each command runs the document's action of the same name. */
export const COMMANDS = DOCUMENT_ACTIONS;
export type CommandName = DocumentAction;

/**
 * Where the target is: the stack whose outputs name it (`--stack`), or, with `--fleet-from-env`,
 * the FLEET_* variables that hold a fleet stack's outputs (the fleet's Jenkins has them as
 * global variables; cli/stack.ts `FLEET_VARIABLES`).
 */
export type StackSelection = (
  | { readonly stackName: string; readonly fleetFromEnvironment?: undefined }
  | { readonly stackName?: undefined; readonly fleetFromEnvironment: true }
) & {
  /** @default - FLEET_REGION with --fleet-from-env, else the SDK's region chain (AWS_REGION, the profile's region) */
  readonly region?: string;
};

/** Who runs a deploy or rollback, for the Run Command comment and the fleet's release record. */
export interface Requester {
  /** Who asked, in the Run Command comment (`--requested-by`). @default - user@host */
  readonly requestedBy?: string;
  /** `recordedBy` of the fleet's release record (`--recorded-by`). @default 'cli' */
  readonly recordedBy?: RecordedBy;
}

/** Who may be named as the release record's writer from this command (FLEET_RELEASE_KEYS.recordedBy). */
export const RECORDED_BY = ['cli', 'jenkins'] as const;
export type RecordedBy = (typeof RECORDED_BY)[number];

/** What `deploy` deploys: a jar on this machine, or one already in S3. */
export type ArtifactSelection = { readonly kind: 'file'; readonly path: string } | { readonly kind: 's3'; readonly uri: string };

export type CliRequest =
  | { readonly command: 'help' }
  | (StackSelection &
      Requester & {
      readonly command: 'deploy';
      readonly artifact: ArtifactSelection;
      readonly version?: string;
      readonly sha256?: string;
      readonly healthTimeoutSeconds?: number;
      /** Fleet only: SSM `MaxConcurrency` for this roll-out. @default - the stack's FleetMaxConcurrency */
      readonly maxConcurrency?: string;
    })
  | (StackSelection & Requester & { readonly command: 'rollback'; readonly healthTimeoutSeconds?: number; readonly maxConcurrency?: string })
  | (StackSelection & { readonly command: 'status'; readonly json: boolean })
  | (StackSelection & { readonly command: 'history'; readonly json: boolean; readonly limit?: number });

const OPTIONS = {
  stack: { type: 'string' },
  'fleet-from-env': { type: 'boolean' },
  region: { type: 'string' },
  version: { type: 'string' },
  sha256: { type: 'string' },
  'health-timeout': { type: 'string' },
  'max-concurrency': { type: 'string' },
  json: { type: 'boolean' },
  limit: { type: 'string' },
  'requested-by': { type: 'string' },
  'recorded-by': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionName = keyof typeof OPTIONS;

/** Which options each command takes, besides the target's (--stack or --fleet-from-env, --region) and --help. */
const COMMAND_OPTIONS: Record<CommandName, readonly OptionName[]> = {
  deploy: ['version', 'sha256', 'health-timeout', 'max-concurrency', 'requested-by', 'recorded-by'],
  rollback: ['health-timeout', 'max-concurrency', 'requested-by', 'recorded-by'],
  status: ['json'],
  history: ['json', 'limit'],
};

/** CloudFormation stack names, or a stack's ARN. */
const STACK_NAME = /^([A-Za-z][A-Za-z0-9-]{0,127}|arn:aws[a-z-]*:cloudformation:[a-z0-9-]+:\d{12}:stack\/[A-Za-z][A-Za-z0-9-]{0,127}\/[0-9a-f-]+)$/;
/** An AWS region name such as us-east-1. */
export const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
/** What `--requested-by` may say: one line of printable text (SendCommand keeps 100 characters of the comment). */
const REQUESTED_BY = /^[^\x00-\x1f\x7f]{1,64}$/;
/** What `history` can show: the document asks the host for this many entries. */
export const HISTORY_MAX_ENTRIES = DOCUMENT_HISTORY_LIMIT;

function usage(message: string): CliError {
  return new CliError(`${message} Run 'npx ec2-bluegreen --help' for usage.`, CLI_EXIT_CODES.usage);
}

/** Reads `argv` (without node and the script). Throws a `CliError` with exit code 2 naming what is wrong. */
export function parseCommandLine(argv: readonly string[]): CliRequest {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    // node's own wording ("Unknown option '--stak'", "Option '--stack <value>' argument missing").
    throw usage(`${(error as Error).message.replace(/\. To specify a positional argument.*$/s, '')}.`);
  }
  const { values, positionals } = parsed;
  const [command, ...operands] = positionals;
  if (values.help === true || command === undefined || command === 'help') return { command: 'help' };
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw usage(`unknown command '${command}': expected one of ${COMMANDS.join(', ')}.`);
  }
  const name = command as CommandName;

  const given = (Object.keys(values) as OptionName[]).filter((option) => values[option] !== undefined && option !== 'help');
  const targetOptions: readonly OptionName[] = ['stack', 'fleet-from-env', 'region'];
  const misplaced = given.filter((option) => !targetOptions.includes(option) && !COMMAND_OPTIONS[name].includes(option));
  if (misplaced.length > 0) {
    throw usage(`${misplaced.map((option) => `--${option}`).join(', ')} does not apply to '${name}' (it takes: ${['--stack', '--region', ...COMMAND_OPTIONS[name].map((o) => `--${o}`)].join(', ')}).`);
  }

  const stackName = values.stack;
  const fromEnvironment = values['fleet-from-env'] === true;
  if (stackName !== undefined && fromEnvironment) {
    throw usage('--stack and --fleet-from-env both name the target: give one (--fleet-from-env reads a fleet stack\'s outputs from the FLEET_* variables).');
  }
  if (stackName === undefined && !fromEnvironment) {
    throw usage(`'${name}' needs --stack NAME: the CloudFormation stack that holds the host (its outputs name the instance and the document).`);
  }
  if (stackName !== undefined && !STACK_NAME.test(stackName)) {
    throw usage(`--stack ${JSON.stringify(stackName)} is not a CloudFormation stack name (a letter, then letters, digits and hyphens, up to 128) or stack ARN.`);
  }
  const region = values.region;
  if (region !== undefined && !REGION.test(region)) throw usage(`--region ${JSON.stringify(region)} is not an AWS region such as us-east-1.`);
  const stack: StackSelection = {
    ...(stackName === undefined ? { fleetFromEnvironment: true as const } : { stackName }),
    ...(region === undefined ? {} : { region }),
  };

  const expectedOperands = name === 'deploy' ? 1 : 0;
  if (name === 'deploy' && operands.length === 0) {
    throw usage("'deploy' needs the jar: a path on this machine (uploaded to the stack's artifact bucket) or s3://BUCKET/KEY.");
  }
  if (operands.length > expectedOperands) {
    throw usage(`unexpected argument${operands.length - expectedOperands > 1 ? 's' : ''} ${operands.slice(expectedOperands).map((o) => `'${o}'`).join(' ')} for '${name}'.`);
  }

  switch (name) {
    case 'deploy':
      return {
        command: 'deploy',
        ...stack,
        artifact: artifactSelection(operands[0]!),
        ...optionalMatching('version', values.version, DOCUMENT_PARAM_PATTERNS.version, 'a release label: letters, digits and . _ + -, up to 64, starting with a letter or digit'),
        ...optionalMatching('sha256', values.sha256, DOCUMENT_PARAM_PATTERNS.sha256, "64 lower-case hex digits (sha256sum's output)"),
        ...healthTimeout(values['health-timeout']),
        ...maxConcurrency(values['max-concurrency']),
        ...requester(values['requested-by'], values['recorded-by']),
      };
    case 'rollback':
      return {
        command: 'rollback',
        ...stack,
        ...healthTimeout(values['health-timeout']),
        ...maxConcurrency(values['max-concurrency']),
        ...requester(values['requested-by'], values['recorded-by']),
      };
    case 'status':
      return { command: 'status', ...stack, json: values.json === true };
    case 'history':
      return { command: 'history', ...stack, json: values.json === true, ...historyLimit(values.limit) };
  }
}

function artifactSelection(operand: string): ArtifactSelection {
  if (/^s3:\/\//i.test(operand)) {
    const pattern = new RegExp(DOCUMENT_PARAM_PATTERNS.artifactUri);
    if (!operand.startsWith('s3://') || !pattern.test(operand)) {
      throw usage(`${JSON.stringify(operand)} is not an s3://BUCKET/KEY the deploy document accepts (lower-case bucket; key of letters, digits and . _ + / = -).`);
    }
    return { kind: 's3', uri: operand };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(operand)) {
    throw usage(`${JSON.stringify(operand)}: deploy takes a jar on this machine or an s3://BUCKET/KEY; for another URL, download the jar first.`);
  }
  return { kind: 'file', path: operand };
}

function optionalMatching<K extends 'version' | 'sha256'>(option: K, value: string | undefined, pattern: string, expected: string): Partial<Record<K, string>> {
  if (value === undefined) return {};
  if (value === '' || !new RegExp(pattern).test(value)) throw usage(`--${option} ${JSON.stringify(value)} is not ${expected}.`);
  return { [option]: value } as Partial<Record<K, string>>;
}

function healthTimeout(value: string | undefined): { healthTimeoutSeconds?: number } {
  if (value === undefined) return {};
  if (!new RegExp(DOCUMENT_PARAM_PATTERNS.healthTimeout).test(value)) {
    throw usage(`--health-timeout ${JSON.stringify(value)} is not a whole number of seconds from 1 to 999.`);
  }
  return { healthTimeoutSeconds: Number(value) };
}

function maxConcurrency(value: string | undefined): { maxConcurrency?: string } {
  if (value === undefined) return {};
  if (!new RegExp(MAX_CONCURRENCY_PATTERN).test(value)) {
    throw usage(`--max-concurrency ${JSON.stringify(value)} is not a number of hosts (1-9999) or a percentage of them (1%-100%).`);
  }
  return { maxConcurrency: value };
}

function requester(requestedBy: string | undefined, recordedBy: string | undefined): Requester {
  if (requestedBy !== undefined && !REQUESTED_BY.test(requestedBy)) {
    throw usage(`--requested-by ${JSON.stringify(requestedBy)} is not one line of 1 to 64 printable characters.`);
  }
  if (recordedBy !== undefined && !(RECORDED_BY as readonly string[]).includes(recordedBy)) {
    throw usage(`--recorded-by ${JSON.stringify(recordedBy)} is not one of ${RECORDED_BY.join(', ')} (who the fleet's release record says wrote it).`);
  }
  return {
    ...(requestedBy === undefined ? {} : { requestedBy }),
    ...(recordedBy === undefined ? {} : { recordedBy: recordedBy as RecordedBy }),
  };
}

function historyLimit(value: string | undefined): { limit?: number } {
  if (value === undefined) return {};
  if (!/^[1-9][0-9]*$/.test(value) || Number(value) > HISTORY_MAX_ENTRIES) {
    throw usage(`--limit ${JSON.stringify(value)} is not a whole number from 1 to ${HISTORY_MAX_ENTRIES} (the host sends its last ${HISTORY_MAX_ENTRIES} entries).`);
  }
  return { limit: Number(value) };
}
