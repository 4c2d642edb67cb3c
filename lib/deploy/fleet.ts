/**
 * Fleet mode, pure parts: the release record new hosts boot from, and what a roll-out's state
 * (SSM's command and its per-host invocations) means for the deploy. Shared by the custom
 * resource and the operator command (which the fleet's Jenkins runs too); the first boot reads
 * the same `KEY=VALUE` record in bash.
 */
import { defaultReleaseLabel, FLEET_RELEASE_KEYS, FLEET_RELEASE_UNSET } from '../contract.js';
import { classifyInvocation, outputTail, type FailureContext, type InvocationReport } from './invocation.js';

/** How a release is named to people: its version, or the label the hosts give an unversioned jar. */
export function releaseLabel(release: { readonly version: string; readonly sha256: string }): string {
  return release.version || defaultReleaseLabel(release.sha256);
}

/** The release the fleet runs, as recorded after a roll-out succeeded on every host. */
export interface FleetRelease {
  readonly artifactUri: string;
  readonly sha256: string;
  /** Empty when the release has no label (the host then labels it with its sha256). */
  readonly version: string;
  readonly commandId: string;
  readonly recordedAt: string;
  readonly recordedBy: string;
  /** The release recorded before this one; empty strings when there was none. */
  readonly previousArtifactUri: string;
  readonly previousSha256: string;
  readonly previousVersion: string;
}

/** What the release to record is: the new artifact, and the one the record held (now every host's warm standby). */
export function nextFleetRelease(
  current: FleetRelease | undefined,
  next: { readonly artifactUri: string; readonly sha256: string; readonly version: string; readonly commandId: string; readonly recordedAt: string; readonly recordedBy: string },
): FleetRelease {
  // Deploying what is already recorded (a repeated update) keeps the record's previous release.
  const previous =
    current === undefined
      ? { previousArtifactUri: '', previousSha256: '', previousVersion: '' }
      : current.sha256 === next.sha256
        ? { previousArtifactUri: current.previousArtifactUri, previousSha256: current.previousSha256, previousVersion: current.previousVersion }
        : { previousArtifactUri: current.artifactUri, previousSha256: current.sha256, previousVersion: current.version };
  return { ...next, ...previous };
}

/**
 * The record after a fleet-wide `rollback` succeeded: the previous release is live again (each
 * host switched to its warm standby), and the rolled-back one is now the standby. Undefined when
 * the record names no previous release.
 */
export function rolledBackFleetRelease(current: FleetRelease, rollback: { readonly commandId: string; readonly recordedAt: string; readonly recordedBy: string }): FleetRelease | undefined {
  if (current.previousArtifactUri === '' || current.previousSha256 === '') return undefined;
  return {
    artifactUri: current.previousArtifactUri,
    sha256: current.previousSha256,
    version: current.previousVersion,
    ...rollback,
    previousArtifactUri: current.artifactUri,
    previousSha256: current.sha256,
    previousVersion: current.version,
  };
}

/** The parameter's value: one `KEY=VALUE` line per field, in `FLEET_RELEASE_KEYS` order. */
export function renderFleetRelease(release: FleetRelease): string {
  return (Object.keys(FLEET_RELEASE_KEYS) as Array<keyof typeof FLEET_RELEASE_KEYS>)
    .map((key) => `${FLEET_RELEASE_KEYS[key]}=${release[key]}`)
    .join('\n');
}

/**
 * Reads the parameter's value; undefined when no release is recorded yet (`FLEET_RELEASE_UNSET`,
 * or no artifact and checksum). Lines starting with `#` and unknown keys are ignored, so an
 * older reader accepts a newer record.
 */
export function parseFleetRelease(value: string | undefined): FleetRelease | undefined {
  if (value === undefined || value.trim() === FLEET_RELEASE_UNSET) return undefined;
  const fields = new Map<string, string>();
  for (const line of value.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const equals = trimmed.indexOf('=');
    if (equals > 0) fields.set(trimmed.slice(0, equals), trimmed.slice(equals + 1));
  }
  const K = FLEET_RELEASE_KEYS;
  const artifactUri = fields.get(K.artifactUri) ?? '';
  const sha256 = fields.get(K.sha256) ?? '';
  if (artifactUri === '' || sha256 === '') return undefined;
  return {
    artifactUri,
    sha256,
    version: fields.get(K.version) ?? '',
    commandId: fields.get(K.commandId) ?? '-',
    recordedAt: fields.get(K.recordedAt) ?? '',
    recordedBy: fields.get(K.recordedBy) ?? '',
    previousArtifactUri: fields.get(K.previousArtifactUri) ?? '',
    previousSha256: fields.get(K.previousSha256) ?? '',
    previousVersion: fields.get(K.previousVersion) ?? '',
  };
}

/** One host's invocation, as ListCommandInvocations reports it. */
export interface HostInvocation extends InvocationReport {
  readonly InstanceId?: string;
}

/** The command as ListCommands reports it. */
export interface FleetCommandReport {
  readonly Status?: string;
  readonly StatusDetails?: string;
  readonly TargetCount?: number;
  readonly CompletedCount?: number;
  readonly ErrorCount?: number;
}

/** Where a roll-out stands. */
export type RollOutOutcome =
  | { readonly kind: 'running'; readonly progress: string }
  | { readonly kind: 'succeeded'; readonly instanceIds: readonly string[] }
  | { readonly kind: 'failed'; readonly summary: string; readonly failed: readonly HostInvocation[]; readonly succeeded: readonly string[]; readonly untouched: readonly string[] };

/** Command statuses after which SSM changes nothing more. */
const TERMINAL_COMMAND_STATUSES = new Set(['Success', 'Failed', 'TimedOut', 'Cancelled']);

/** `2 of 3 hosts done (i-1 Success, i-2 InProgress, i-3 Pending)`: one line for the logs. */
export function rollOutProgress(command: FleetCommandReport, invocations: readonly HostInvocation[]): string {
  const done = invocations.filter((entry) => classifyInvocation(entry, NO_CONTEXT).kind !== 'running').length;
  const hosts = invocations.map((entry) => `${entry.InstanceId ?? '?'} ${entry.Status ?? 'Pending'}`).join(', ');
  return `${done} of ${command.TargetCount ?? invocations.length} hosts done${hosts === '' ? '' : ` (${hosts})`}`;
}

const NO_CONTEXT: FailureContext = { deliveryTimeoutSeconds: 0 };

/**
 * What the roll-out's state means: running until SSM calls the command final; succeeded only
 * when at least one host ran it and every host succeeded; otherwise failed, with the hosts that
 * failed, those that took the release, and those the command never ran on (`MaxErrors` 0 stopped
 * it), which keep serving the previous release.
 */
export function classifyRollOut(command: FleetCommandReport, invocations: readonly HostInvocation[]): RollOutOutcome {
  const status = command.Status ?? 'Pending';
  if (!TERMINAL_COMMAND_STATUSES.has(status)) return { kind: 'running', progress: rollOutProgress(command, invocations) };
  const succeeded = invocations.filter((entry) => entry.Status === 'Success').map((entry) => entry.InstanceId ?? '?');
  if (status === 'Success' && invocations.length > 0 && succeeded.length === invocations.length) {
    return { kind: 'succeeded', instanceIds: succeeded };
  }
  // Never started: past the error limit SSM sends to no further host and marks its invocation
  // Terminated. (ListCommandInvocations carries no response code; a Cancelled one may have run.)
  const neverRan = (entry: HostInvocation) =>
    entry.Status === 'Pending' || (entry.Status === 'Cancelled' && entry.StatusDetails?.replace(/\s+/g, '') === 'Terminated');
  const untouched = invocations.filter((entry) => entry.Status !== 'Success' && neverRan(entry)).map((entry) => entry.InstanceId ?? '?');
  const failed = invocations.filter((entry) => entry.Status !== 'Success' && !neverRan(entry));
  if (invocations.length === 0) {
    return {
      kind: 'failed',
      summary: `no host matched the command's target (${command.StatusDetails ?? status}), so nothing was deployed`,
      failed,
      succeeded,
      untouched,
    };
  }
  const summary =
    failed.length === 0
      ? `the roll-out ended ${status} (${command.StatusDetails ?? status}) before every host took it`
      : `${failed.length} of ${invocations.length} hosts failed`;
  return { kind: 'failed', summary, failed, succeeded, untouched };
}

/** `text` ending with a full stop, unless it already ends a sentence (`.`, `!`, `?`, or `…` where it was cut). */
function sentence(text: string): string {
  return /[.!?…]$/.test(text) ? text : `${text}.`;
}

/** The longest fleet failure message; CloudFormation keeps 4 KB for the whole response. */
export const MAX_FLEET_FAILURE_CHARS = 1500;
/** Per failed host, the room for its own words; the rest names the others. */
const HOST_TAIL_CHARS = 300;

/** Details of one failed host: its status, and the tail of its errors (from GetCommandInvocation). */
export interface FailedHost {
  readonly instanceId: string;
  readonly report: InvocationReport;
}

/**
 * The reason CloudFormation shows for a failed roll-out: which hosts failed and why (their
 * status and output tail), which took the release (CloudFormation's rollback puts the previous
 * one back from their warm standby), which were never touched, and where the full output is.
 */
export function fleetFailureMessage(failure: {
  readonly summary: string;
  readonly commandId: string;
  readonly version?: string;
  readonly failedHosts: readonly FailedHost[];
  readonly succeeded: readonly string[];
  readonly untouched: readonly string[];
  readonly context: FailureContext;
  readonly outputLogGroupName?: string;
  /** What failed, as the message opens. @default - `Roll-out of VERSION` */
  readonly subject?: string;
}): string {
  const hostLines = failure.failedHosts.map(({ instanceId, report }) => {
    const outcome = classifyInvocation(report, failure.context);
    const why = outcome.kind === 'failed' ? outcome.summary : (report.Status ?? 'unknown');
    const stderr = report.StandardErrorContent ?? '';
    const errorLines = stderr.split('\n').filter((line) => /\berror:/i.test(line));
    const said = outputTail(errorLines.length > 0 ? errorLines.join('\n') : stderr || report.StandardOutputContent, HOST_TAIL_CHARS);
    return `${instanceId}: ${why}${said === '' ? '' : `; host: ${said}`}`;
  });
  const where =
    failure.outputLogGroupName === undefined
      ? `aws ssm list-command-invocations --command-id ${failure.commandId} --details`
      : `CloudWatch log group ${failure.outputLogGroupName}, streams ${failure.commandId}/INSTANCE/*`;
  const parts = [
    sentence(`${failure.subject ?? `Roll-out of ${failure.version ?? 'the artifact'}`} failed: ${failure.summary}`),
    // A host's own words usually end a sentence already ("... keeps serving.").
    hostLines.length === 0 ? '' : ` ${sentence(hostLines.join(' || '))}`,
    failure.succeeded.length === 0
      ? ''
      : ` Took the new release: ${failure.succeeded.join(', ')} (the stack's rollback switches them back to their warm standby).`,
    failure.untouched.length === 0 ? '' : ` Not deployed (still on the previous release): ${failure.untouched.join(', ')}.`,
    ` Full output: ${where}.`,
  ];
  const message = parts.join('');
  return message.length <= MAX_FLEET_FAILURE_CHARS ? message : `${message.slice(0, MAX_FLEET_FAILURE_CHARS - 1)}…`;
}
