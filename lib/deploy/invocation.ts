/**
 * What a command invocation's state means for the deploy: still running, done (with the live
 * slot), or failed (with a reason short enough for a CloudFormation event). Pure.
 */
import { exitCodeEntry, type Slot } from '../contract.js';
import { redactCredentials } from '../redact.js';

/** The fields of GetCommandInvocation (or a ListCommandInvocations entry) this module reads. */
export interface InvocationReport {
  readonly Status?: string;
  readonly StatusDetails?: string;
  readonly ResponseCode?: number;
  readonly StandardOutputContent?: string;
  readonly StandardErrorContent?: string;
}

export type InvocationOutcome =
  | { readonly kind: 'running'; readonly status: string }
  | { readonly kind: 'succeeded' }
  | { readonly kind: 'failed'; readonly summary: string };

/** Every `Status` of a command invocation, and whether the deploy waits on it. */
const STATUSES = {
  Pending: 'running',
  InProgress: 'running',
  // The instance was unreachable; SSM retries until the delivery timeout, then says DeliveryTimedOut.
  Delayed: 'running',
  // Ends as Cancelled; report that rather than the intermediate state.
  Cancelling: 'running',
  Success: 'succeeded',
  Failed: 'failed',
  TimedOut: 'failed',
  Cancelled: 'failed',
} as const satisfies Record<string, InvocationOutcome['kind']>;

/** Context for the sentences that explain a failure. */
export interface FailureContext {
  readonly deliveryTimeoutSeconds: number;
  readonly executionTimeoutSeconds?: number;
}

/**
 * What happened, for each `StatusDetails` a failed, timed-out or cancelled invocation can carry.
 * Each says whether the host was touched: a command that never started changed nothing.
 */
function detailExplanation(details: string, context: FailureContext): string | undefined {
  const execution = context.executionTimeoutSeconds === undefined ? '' : ` (${context.executionTimeoutSeconds}s)`;
  switch (details.replace(/\s+/g, '')) {
    case 'DeliveryTimedOut':
      return `SSM Agent did not pick the command up within the delivery timeout (${context.deliveryTimeoutSeconds}s), so nothing ran on the host. Check that the instance is running and Online in Systems Manager (Fleet Manager)`;
    case 'ExecutionTimedOut':
      return `the deploy ran longer than the document's execution timeout${execution} and SSM stopped it. Nginx only ever switches to a healthy slot, and the next deploy recovers the interrupted one`;
    case 'Undeliverable':
      return 'the command could not be delivered: the instance is stopped, terminated, or no longer managed by Systems Manager; nothing ran on the host';
    case 'Terminated':
      return 'the command was stopped before it finished on this instance (its parent command was cancelled or reached its error limit)';
    case 'InvalidPlatform':
      return "the instance is not Linux, so the document's Linux-only step did not run; nothing changed on the host";
    case 'NoInstancesInTag':
      return 'no instance matched the command\'s target, so nothing ran';
    case 'AccessDenied':
      return "Systems Manager or the instance's role denied the command; nothing ran on the host";
    case 'Cancelled':
    case 'Canceled':
      return 'someone cancelled the command (aws ssm cancel-command) before it finished';
    default:
      return undefined;
  }
}

/** `exit status 5 (the new release did not become healthy)`, or just the number for a status the engine never uses. */
export function describeExitStatus(code: number): string {
  const entry = exitCodeEntry(code);
  return entry === undefined ? `exit status ${code}` : `exit status ${code} (${entry.meaning})`;
}

/** Maps an invocation's state to what the deploy does next. */
export function classifyInvocation(report: InvocationReport, context: FailureContext): InvocationOutcome {
  const status = report.Status ?? 'Pending';
  const kind: InvocationOutcome['kind'] | undefined = STATUSES[status as keyof typeof STATUSES];
  // A status newer than this code: keep waiting; the provider's total timeout still bounds it.
  if (kind === undefined || kind === 'running') return { kind: 'running', status };
  if (kind === 'succeeded') return { kind: 'succeeded' };

  const details = report.StatusDetails ?? status;
  const explanation = detailExplanation(details, context);
  const ran = report.ResponseCode !== undefined && report.ResponseCode >= 0;
  if (status === 'Failed' && (details === 'Failed' || explanation === undefined)) {
    return {
      kind: 'failed',
      summary: ran ? `the deploy script failed with ${describeExitStatus(report.ResponseCode!)}` : `the command failed (${details})`,
    };
  }
  return { kind: 'failed', summary: `${status} (${details}): ${explanation ?? 'SSM gave no further detail'}` };
}

/**
 * Control characters (colour codes, carriage returns) say nothing in a CloudFormation event, and
 * a credential the host echoed (a presigned artifact URL it could not fetch) must not land there.
 */
function printable(line: string): string {
  return redactCredentials(line.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '').trim());
}

/**
 * The last lines of `text` that fit in `maxChars`, joined with " | " (CloudFormation shows a
 * reason on one line). A last line longer than the budget keeps its end, after "…".
 */
export function outputTail(text: string | undefined, maxChars: number): string {
  const lines = (text ?? '').split('\n').map(printable).filter((line) => line !== '');
  const kept: string[] = [];
  let used = 0;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    const cost = line.length + (kept.length > 0 ? 3 : 0);
    if (used + cost > maxChars) {
      if (kept.length === 0 && maxChars > 1) kept.unshift(`…${line.slice(line.length - (maxChars - 1))}`);
      break;
    }
    kept.unshift(line);
    used += cost;
  }
  return kept.join(' | ');
}

/**
 * The longest failure message. CloudFormation takes at most 4 KB for the whole response, and
 * the provider framework adds the function's log group to the reason.
 */
export const MAX_FAILURE_MESSAGE_CHARS = 1500;
const ERROR_BUDGET_CHARS = 800;
const PROGRESS_BUDGET_CHARS = 300;

export interface FailedDeploy {
  readonly summary: string;
  readonly report: InvocationReport;
  readonly commandId: string;
  readonly instanceId: string;
  readonly version?: string;
  readonly outputLogGroupName?: string;
  /**
   * What failed, as the message's subject: "SUBJECT failed: ...".
   * @default - "Deploy of VERSION to INSTANCE"
   */
  readonly subject?: string;
}

/**
 * The reason CloudFormation shows: what failed, the host's own words (its error lines say what
 * was kept serving), where the deploy got to, and where the full output is.
 */
export function failureMessage(failure: FailedDeploy): string {
  const stderr = failure.report.StandardErrorContent ?? '';
  const errorLines = stderr.split('\n').filter((line) => /\berror:/i.test(line));
  const hostSaid = outputTail(errorLines.length > 0 ? errorLines.join('\n') : stderr, ERROR_BUDGET_CHARS);
  const progress = outputTail(failure.report.StandardOutputContent, PROGRESS_BUDGET_CHARS);
  const where =
    failure.outputLogGroupName === undefined
      ? `aws ssm get-command-invocation --command-id ${failure.commandId} --instance-id ${failure.instanceId}`
      : `CloudWatch log group ${failure.outputLogGroupName}, streams ${failure.commandId}/${failure.instanceId}/*`;
  const parts = [
    `${failure.subject ?? `Deploy of ${failure.version ?? 'the artifact'} to ${failure.instanceId}`} failed: ${failure.summary}.`,
    hostSaid === '' ? '' : ` Host: ${hostSaid}`,
    progress === '' ? '' : ` Last progress: ${progress}`,
    ` Full output: ${where}.`,
  ];
  const message = parts.join('');
  return message.length <= MAX_FAILURE_MESSAGE_CHARS ? message : `${message.slice(0, MAX_FAILURE_MESSAGE_CHARS - 1)}…`;
}

export interface DeployResult {
  /** The slot serving after the deploy; undefined when the output does not say. */
  readonly liveSlot?: Slot;
  /** The release label serving after the deploy, as the host reports it. */
  readonly version?: string;
}

const SLOT_NAMES: readonly string[] = ['blue', 'green'];

/**
 * The live slot and version, read from the document's output: the last `bluegreen status --json`
 * line when the script prints one, else the engine's closing line ("v2 is live on green; ...",
 * "v2 is already live on green; nothing to do").
 */
export function deployResult(stdout: string | undefined): DeployResult {
  const lines = (stdout ?? '').split('\n').map((line) => line.trim()).filter((line) => line !== '');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (!line.startsWith('{')) continue;
    try {
      const status = JSON.parse(line) as { live?: unknown; slots?: Record<string, { version?: unknown }> };
      if (typeof status.live === 'string' && SLOT_NAMES.includes(status.live)) {
        const version = status.slots?.[status.live]?.version;
        return { liveSlot: status.live as Slot, version: typeof version === 'string' ? version : undefined };
      }
    } catch {
      // Not the status line; keep looking.
    }
  }
  for (let i = lines.length - 1; i >= 0; i--) {
    const done = /\bdone\s+(\S+) is (?:already )?live on (blue|green)\b/.exec(lines[i]!);
    if (done) return { liveSlot: done[2] as Slot, version: done[1] };
  }
  return {};
}
