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

/** Where the stack is. */
export interface StackSelection {
  readonly stackName: string;
  /** @default - the SDK's region chain (AWS_REGION, the profile's region) */
  readonly region?: string;
}

/** What `deploy` deploys: a jar on this machine, or one already in S3. */
export type ArtifactSelection = { readonly kind: 'file'; readonly path: string } | { readonly kind: 's3'; readonly uri: string };

export type CliRequest =
  | { readonly command: 'help' }
  | (StackSelection & {
      readonly command: 'deploy';
      readonly artifact: ArtifactSelection;
      readonly version?: string;
      readonly sha256?: string;
      readonly healthTimeoutSeconds?: number;
      /** Fleet only: SSM `MaxConcurrency` for this roll-out. @default - the stack's FleetMaxConcurrency */
      readonly maxConcurrency?: string;
    })
  | (StackSelection & { readonly command: 'rollback'; readonly healthTimeoutSeconds?: number; readonly maxConcurrency?: string })
  | (StackSelection & { readonly command: 'status'; readonly json: boolean })
  | (StackSelection & { readonly command: 'history'; readonly json: boolean; readonly limit?: number });

const OPTIONS = {
  stack: { type: 'string' },
  region: { type: 'string' },
  version: { type: 'string' },
  sha256: { type: 'string' },
  'health-timeout': { type: 'string' },
  'max-concurrency': { type: 'string' },
  json: { type: 'boolean' },
  limit: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionName = keyof typeof OPTIONS;

/** Which options each command takes, besides --stack, --region and --help. */
const COMMAND_OPTIONS: Record<CommandName, readonly OptionName[]> = {
  deploy: ['version', 'sha256', 'health-timeout', 'max-concurrency'],
  rollback: ['health-timeout', 'max-concurrency'],
  status: ['json'],
  history: ['json', 'limit'],
};

/** CloudFormation stack names, or a stack's ARN. */
const STACK_NAME = /^([A-Za-z][A-Za-z0-9-]{0,127}|arn:aws[a-z-]*:cloudformation:[a-z0-9-]+:\d{12}:stack\/[A-Za-z][A-Za-z0-9-]{0,127}\/[0-9a-f-]+)$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
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
  const misplaced = given.filter((option) => option !== 'stack' && option !== 'region' && !COMMAND_OPTIONS[name].includes(option));
  if (misplaced.length > 0) {
    throw usage(`${misplaced.map((option) => `--${option}`).join(', ')} does not apply to '${name}' (it takes: ${['--stack', '--region', ...COMMAND_OPTIONS[name].map((o) => `--${o}`)].join(', ')}).`);
  }

  const stackName = values.stack;
  if (stackName === undefined) throw usage(`'${name}' needs --stack NAME: the CloudFormation stack that holds the host (its outputs name the instance and the document).`);
  if (!STACK_NAME.test(stackName)) throw usage(`--stack ${JSON.stringify(stackName)} is not a CloudFormation stack name (a letter, then letters, digits and hyphens, up to 128) or stack ARN.`);
  const region = values.region;
  if (region !== undefined && !REGION.test(region)) throw usage(`--region ${JSON.stringify(region)} is not an AWS region such as us-east-1.`);
  const stack: StackSelection = { stackName, ...(region === undefined ? {} : { region }) };

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
      };
    case 'rollback':
      return { command: 'rollback', ...stack, ...healthTimeout(values['health-timeout']), ...maxConcurrency(values['max-concurrency']) };
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

function historyLimit(value: string | undefined): { limit?: number } {
  if (value === undefined) return {};
  if (!/^[1-9][0-9]*$/.test(value) || Number(value) > HISTORY_MAX_ENTRIES) {
    throw usage(`--limit ${JSON.stringify(value)} is not a whole number from 1 to ${HISTORY_MAX_ENTRIES} (the host sends its last ${HISTORY_MAX_ENTRIES} entries).`);
  }
  return { limit: Number(value) };
}
