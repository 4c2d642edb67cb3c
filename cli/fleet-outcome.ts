/**
 * What a fleet command means for the user, as text: the per-host progress lines, the exit code
 * of a roll-out, the fleet's status and history. Pure. The status words and failure reasons are
 * the custom resource's own (lib/deploy/invocation.ts and fleet.ts).
 */
import { type FleetRelease, releaseLabel } from '../lib/deploy/fleet.js';
import { classifyInvocation, type FailureContext, type InvocationReport } from '../lib/deploy/invocation.js';
import type { HistoryEntry, Status } from '../lib/contract.js';
import { CLI_EXIT_CODES } from './errors.js';
import { exitCodeOf, formatHistory } from './outcome.js';

/** `i-0abc | bluegreen [  0.03s] lock ...`: one line of a host's output. */
export function hostOutputLine(instanceId: string, line: string): string {
  return `${instanceId} | ${line}`;
}

/** `i-0abc: started (host 2 of 3)`. */
export function hostStartedLine(instanceId: string, position: { readonly started: number; readonly total: number }): string {
  return `${instanceId}: started (host ${position.started} of ${position.total})`;
}

/**
 * `i-0abc: Success in 3.2s (2 of 3 done)`, or `i-0abc: Failed after 3.2s: <why>`: the status SSM
 * gave the host's invocation, how long it ran, and for a failure the custom resource's reason.
 */
export function hostEndedLine(
  instanceId: string,
  report: InvocationReport,
  seconds: number | undefined,
  position: { readonly done: number; readonly total: number },
  context: FailureContext,
): string {
  const status = report.Status ?? 'unknown';
  const time = seconds === undefined ? '' : ` ${status === 'Success' ? 'in' : 'after'} ${seconds.toFixed(1)}s`;
  const outcome = classifyInvocation(report, context);
  // The summary may open with the status this line already gives ("TimedOut (DeliveryTimedOut): ...").
  const why = outcome.kind === 'failed' ? `: ${outcome.summary.startsWith(`${status} (`) ? outcome.summary.replace(/^\S+ \([^)]*\): /, '') : outcome.summary}` : '';
  return `${instanceId}: ${status}${time}${why} (${position.done} of ${position.total} done)`;
}

/** A host the roll-out never ran on: SSM stopped at the first failure (`MaxErrors` 0). */
export function hostNotRunLine(instanceId: string, report: InvocationReport): string {
  const how = report.Status === 'Cancelled' ? `${report.Status} (${report.StatusDetails ?? 'Terminated'})` : (report.Status ?? 'Pending');
  return `${instanceId}: not run, ${how}: the roll-out stopped at the first failure; this host is unchanged`;
}

/**
 * The exit code of a failed roll-out: the first failed host's (the engine's code when the
 * script failed there, 10 when SSM ended it without one); 10 when no host failed but the roll-out
 * did not finish (delivery timed out, cancelled); 9 when it ran on no host at all.
 */
export function rollOutExitCode(failedHosts: ReadonlyArray<{ readonly report: InvocationReport }>, hostCount: number, context: FailureContext): number {
  const first = failedHosts[0];
  if (first !== undefined) {
    const code = exitCodeOf(first.report, context);
    return code === CLI_EXIT_CODES.ok ? CLI_EXIT_CODES.unexpected : code;
  }
  return hostCount === 0 ? CLI_EXIT_CODES.aws : CLI_EXIT_CODES.didNotFinish;
}

/** One host's answer to `status`: its state, or why there is none. */
export type HostStatus =
  | { readonly instanceId: string; readonly status: Status }
  | { readonly instanceId: string; readonly status?: undefined; readonly problem: string };

/** The version and slot a host serves, as the status table shows it. */
function liveOf(status: Status): { readonly slot: string; readonly version: string; readonly sha256: string | null } | undefined {
  if (status.live === null) return undefined;
  const slot = status.slots[status.live];
  return { slot: status.live, version: slot.version ?? 'unknown', sha256: slot.sha256 };
}

/**
 * The fleet's status: the recorded release, one row per host (live version and slot, its warm
 * standby, whether it runs the recorded release), and whether the hosts agree.
 */
export function formatFleetStatus(
  hosts: readonly HostStatus[],
  where: { readonly stackName: string; readonly tag: string; readonly siteUrl?: string },
  recorded: { readonly release?: FleetRelease; readonly problem?: string },
): string[] {
  const lines = [
    `${where.stackName}: ${hosts.length} host${hosts.length === 1 ? '' : 's'} (tag ${where.tag})${where.siteUrl === undefined ? '' : ` at ${where.siteUrl}`}`,
    `recorded release (new hosts boot it): ${recordedText(recorded)}`,
    '',
    row(['INSTANCE', 'LIVE', 'VERSION', 'STANDBY', 'HEALTHY', 'RECORDED']),
  ];
  for (const host of hosts) {
    if (host.status === undefined) {
      lines.push(row([host.instanceId, '-', '-', '-', '-', '-']) + `  (${host.problem})`);
      continue;
    }
    const live = liveOf(host.status);
    const standbyName = (['blue', 'green'] as const).find((name) => host.status.slots[name].role === 'standby');
    const standby = standbyName === undefined ? '-' : `${host.status.slots[standbyName].version ?? 'unknown'} (${standbyName})`;
    const healthy = live === undefined ? '-' : host.status.slots[live.slot as 'blue' | 'green'].healthy ? 'yes' : 'no';
    const matches = recorded.release === undefined || live === undefined ? '-' : live.sha256 === recorded.release.sha256 ? 'yes' : 'no';
    lines.push(row([host.instanceId, live?.slot ?? '-', live?.version ?? 'nothing live', standby, healthy, matches]));
  }
  lines.push('', agreement(hosts));
  return lines;
}

/** `all 3 hosts serve v2` or `hosts disagree: v2 on i-1, i-2; v1 on i-3`. */
export function agreement(hosts: readonly HostStatus[]): string {
  const byVersion = new Map<string, string[]>();
  for (const host of hosts) {
    const live = host.status === undefined ? undefined : liveOf(host.status);
    const key = host.status === undefined ? 'no answer' : live === undefined ? 'nothing live' : live.version;
    byVersion.set(key, [...(byVersion.get(key) ?? []), host.instanceId]);
  }
  if (byVersion.size === 1 && !byVersion.has('no answer')) {
    const [version] = byVersion.keys();
    return `all ${hosts.length} hosts serve ${version}`;
  }
  return `hosts disagree: ${[...byVersion.entries()].map(([version, ids]) => `${version} on ${ids.join(', ')}`).join('; ')}`;
}

function recordedText(recorded: { readonly release?: FleetRelease; readonly problem?: string }): string {
  if (recorded.problem !== undefined) return `unreadable (${recorded.problem})`;
  const release = recorded.release;
  if (release === undefined) return "none yet (hosts boot the stack's first release)";
  const when = release.recordedAt === '' ? '' : ` at ${release.recordedAt}`;
  const by = release.recordedBy === '' ? '' : ` by ${release.recordedBy}`;
  const previous = release.previousSha256 === '' ? '' : `; previous ${releaseLabel({ version: release.previousVersion, sha256: release.previousSha256 })}`;
  return `${releaseLabel(release)} (sha256 ${release.sha256.slice(0, 12)}, recorded${when}${by})${previous}`;
}

/**
 * The fleet's history: each host keeps its own, so each gets its own table under its id (a
 * host the Auto Scaling group added later has a shorter one).
 */
export function formatFleetHistory(hosts: ReadonlyArray<{ readonly instanceId: string; readonly entries?: readonly HistoryEntry[]; readonly problem?: string }>, limit?: number): string[] {
  const lines: string[] = [];
  for (const host of hosts) {
    if (lines.length > 0) lines.push('');
    lines.push(`== ${host.instanceId}`);
    if (host.entries === undefined) lines.push(`(${host.problem ?? 'no answer'})`);
    else lines.push(...formatHistory(host.entries, limit));
  }
  return lines;
}

const WIDTHS = [21, 6, 20, 24, 8, 0];

function row(cells: readonly string[]): string {
  return cells.map((cell, i) => (WIDTHS[i] === 0 || i === cells.length - 1 ? cell : cell.padEnd(WIDTHS[i]! - 1) + ' ')).join('').trimEnd();
}
