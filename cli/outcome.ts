/**
 * What an ended command means for the user: the exit code, the failure reason, and the host's
 * status and history as readable text. Pure. The status and failure logic is the deploy custom
 * resource's own (lib/deploy/invocation.ts), so the console, CloudFormation and this
 * command say the same thing about the same failure.
 */
import { EXIT_CODES } from '../lib/contract.js';
import {
  classifyInvocation,
  deployResult,
  failureMessage,
  type FailureContext,
  type InvocationReport,
} from '../lib/deploy/invocation.js';
import type { HistoryEntry, SlotStatus, Status } from '../lib/contract.js';
import type { CommandName } from './args.js';
import { CLI_EXIT_CODES } from './errors.js';

const ENGINE_CODES = new Set<number>(Object.values(EXIT_CODES));

/**
 * The exit code for an ended invocation: 0 on success; the script's exit status when it ran
 * and failed (the engine's codes; any other status is 1, unexpected); 10 when SSM ended the
 * command without one (timed out, cancelled, never delivered).
 */
export function exitCodeOf(report: InvocationReport, context: FailureContext): number {
  const outcome = classifyInvocation(report, context);
  if (outcome.kind === 'succeeded') return CLI_EXIT_CODES.ok;
  if (outcome.kind === 'running') throw new Error(`the invocation has not ended (${outcome.status})`);
  const code = report.ResponseCode;
  if (report.Status === 'Failed' && code !== undefined && code > 0) return ENGINE_CODES.has(code) ? code : CLI_EXIT_CODES.unexpected;
  return CLI_EXIT_CODES.didNotFinish;
}

export interface FailedCommand {
  readonly command: CommandName;
  readonly report: InvocationReport;
  readonly commandId: string;
  readonly instanceId: string;
  readonly version?: string;
  readonly outputLogGroupName?: string;
}

/** The reason, in the custom resource's words; its subject names the command that failed. */
export function failureReason(failure: FailedCommand, context: FailureContext): string {
  const outcome = classifyInvocation(failure.report, context);
  const summary = outcome.kind === 'failed' ? outcome.summary : `the command ended as ${failure.report.Status ?? 'unknown'}`;
  const message = failureMessage({
    summary,
    report: failure.report,
    commandId: failure.commandId,
    instanceId: failure.instanceId,
    version: failure.version,
    outputLogGroupName: failure.outputLogGroupName,
    // failureMessage speaks of deploys by default; other commands name themselves.
    ...(failure.command === 'deploy' ? {} : { subject: `${failure.command[0]!.toUpperCase()}${failure.command.slice(1)} on ${failure.instanceId}` }),
  });
  return message;
}

/** The host's state as `bluegreen status --json` prints it: the last such line of the output. */
export function parseStatus(stdoutLines: readonly string[]): Status | undefined {
  for (let i = stdoutLines.length - 1; i >= 0; i--) {
    const line = stdoutLines[i]!.trim();
    if (!line.startsWith('{"live"')) continue;
    try {
      return JSON.parse(line) as Status;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Whether a line is the status JSON the document prints at the end (shown as a table instead). */
export function isStatusLine(line: string): boolean {
  return line.trimStart().startsWith('{"live"');
}

const SLOT_ORDER = ['blue', 'green'] as const;

/** `bluegreen status` as a table, with what each slot is for. */
export function formatStatus(status: Status, where: { readonly stackName: string; readonly instanceId: string; readonly siteUrl?: string }): string[] {
  const live = status.live;
  const liveVersion = live === null ? undefined : status.slots[live].version;
  const lines = [
    `${where.stackName} (${where.instanceId}): ${live === null ? 'nothing deployed yet' : `${liveVersion ?? 'unknown version'} is live on ${live}`}` +
      (where.siteUrl === undefined ? '' : ` at ${where.siteUrl}`),
    '',
    row(['SLOT', 'PORT', 'ROLE', 'VERSION', 'RUNNING', 'HEALTHY', 'RELEASE']),
  ];
  for (const name of SLOT_ORDER) {
    const slot: SlotStatus = status.slots[name];
    lines.push(row([name, String(slot.port), slot.role, slot.version ?? '-', yesNo(slot.running), yesNo(slot.healthy), slot.release ?? '-']));
  }
  const standby = SLOT_ORDER.find((name) => status.slots[name].role === 'standby');
  if (standby !== undefined) {
    lines.push('', `'ec2-bluegreen rollback' switches back to ${standby} (${status.slots[standby].version ?? 'unknown version'}), the warm standby.`);
  }
  if (status.lastOperation !== null) lines.push('', `last: ${historyLine(status.lastOperation)}`);
  return lines;
}

/** The history, oldest first, as a table (the last `limit` entries). */
export function formatHistory(entries: readonly HistoryEntry[], limit?: number): string[] {
  if (entries.length === 0) return ['no deploys yet'];
  const shown = limit === undefined ? entries : entries.slice(-limit);
  return [row(['WHEN', 'ACTION', 'VERSION', 'FROM-TO', 'RESULT', 'TIME', 'MESSAGE'], HISTORY_WIDTHS), ...shown.map((entry) => historyRow(entry))];
}

/** The history JSON (`bluegreen history --json`): the last line that is a JSON array. */
export function parseHistory(stdoutLines: readonly string[]): HistoryEntry[] | undefined {
  for (let i = stdoutLines.length - 1; i >= 0; i--) {
    const line = stdoutLines[i]!.trim();
    if (!line.startsWith('[')) continue;
    try {
      return JSON.parse(line) as HistoryEntry[];
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** One line that says what a successful deploy or rollback left live. */
export function resultLine(stdoutLines: readonly string[]): string | undefined {
  const status = parseStatus(stdoutLines);
  const result = deployResult(stdoutLines.join('\n'));
  if (result.liveSlot === undefined) return undefined;
  const standby = status === undefined ? undefined : SLOT_ORDER.find((name) => status.slots[name].role === 'standby');
  const standbyText = standby === undefined ? '' : `; ${standby} (${status!.slots[standby].version ?? 'unknown version'}) is the warm standby`;
  return `${result.version ?? 'the release'} is live on ${result.liveSlot}${standbyText}`;
}

const STATUS_WIDTHS = [6, 6, 8, 20, 8, 8, 0];
const HISTORY_WIDTHS = [20, 9, 15, 14, 12, 8, 0];

function row(cells: readonly string[], widths: readonly number[] = STATUS_WIDTHS): string {
  return cells.map((cell, i) => (widths[i] === 0 || i === cells.length - 1 ? cell : cell.padEnd(widths[i]! - 1) + ' ')).join('').trimEnd();
}

function yesNo(value: boolean): string {
  return value ? 'yes' : 'no';
}

function fromTo(entry: HistoryEntry): string {
  return `${entry.from ?? '-'}->${entry.to ?? '-'}`;
}

function seconds(entry: HistoryEntry): string {
  return entry.seconds === null || entry.seconds === undefined ? '' : `${entry.seconds}s`;
}

function historyRow(entry: HistoryEntry): string {
  return row([entry.at, entry.action, entry.version ?? '-', fromTo(entry), entry.result, seconds(entry), entry.message], HISTORY_WIDTHS);
}

function historyLine(entry: HistoryEntry): string {
  return [entry.at, entry.action, entry.version ?? '-', fromTo(entry), entry.result, seconds(entry), entry.message].filter((part) => part !== '').join('  ');
}
