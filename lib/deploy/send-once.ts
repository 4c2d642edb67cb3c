/**
 * SendCommand at most once per request, for the custom resource and the operator command alike.
 *
 * SendCommand is not idempotent and takes no client token: when its answer is lost (a 5xx from a
 * request SSM had already acted on, a dropped connection), sending again creates a second
 * command, which runs the deploy twice. So after an answer that may hide a created command, each
 * further attempt first looks for an earlier send of the same request (ListCommands: this
 * document, since just before the first attempt, the same comment, targets and parameters) and
 * adopts it instead of sending. The request is left exactly as the caller built it: the Run
 * Command console and `list-commands` show the caller's comment, nothing added. The SDK's own
 * retries would send again blind: they are off for SendCommand, whose retries are these.
 */
import { paginateListCommands, SendCommandCommand, type Command, type CommandFilter, type SendCommandCommandInput, type SSMClient, type Target } from '@aws-sdk/client-ssm';
import { everyPage } from './pages.js';
import { mayHaveTakenEffect, withRetries, type RetryDependencies } from './retry.js';

/**
 * When an answer is lost with no answer at all (a dropped connection), how far before the attempt
 * (by this machine's clock, corrected by the skew the SDK measured) a command may have been
 * requested and still be taken for it: room for a clock a little ahead of SSM's. An answer that
 * did come (a 5xx) dates the attempt by SSM's own clock instead, to about a second.
 */
export const SEND_SEARCH_MARGIN_SECONDS = 30;

/** Room for SSM's servers' clocks to differ from each other (the Date header's vs the command's). */
const SERVER_CLOCK_SLACK_MS = 1000;

/**
 * SendCommand's answer was lost, and no earlier send of the same request has shown up: the
 * command may run, or may never have been created.
 */
export class SendOutcomeUnknownError extends Error {
  constructor(
    /** The last error of the send (or of the search for it). */
    readonly lastError: unknown,
    readonly documentName: string,
    /** The request's comment, which the command shows if it was created. */
    readonly comment: string,
    /** ListCommands' `InvokedAfter` for the search: whole seconds, UTC. */
    readonly since: string,
  ) {
    const { name, message } = lastError instanceof Error ? lastError : { name: 'Error', message: String(lastError) };
    super(
      `the answer to SendCommand was lost (${name}: ${message}) and no command of ${documentName} with the comment ` +
        `"${comment}" shows up since ${since}, so it may or may not have been created`,
    );
    this.name = 'SendOutcomeUnknownError';
  }

  /** The AWS CLI line that lists the commands that could be it (the comment says which). */
  get findCommand(): string {
    return (
      `aws ssm list-commands --filters key=DocumentName,value=${this.documentName} key=InvokedAfter,value=${this.since} ` +
      `--query 'Commands[].[CommandId,Status,Comment]' --output text`
    );
  }
}

export interface SendOnceOptions {
  /** Epoch ms after which no further attempt starts. */
  readonly deadlineMs: number;
  /** Clock, sleep, jitter and IAM patience for the retries. */
  readonly retry: RetryDependencies;
}

/** The SDK's measured offset of SSM's clock from ours (it learns one only when the skew is large). */
function clockOffsetMs(ssm: SSMClient): number {
  const offset = (ssm.config as { systemClockOffset?: unknown }).systemClockOffset;
  return typeof offset === 'number' && Number.isFinite(offset) ? offset : 0;
}

/**
 * The earliest time, by SSM's clock, at which the attempt that failed with `error` can have
 * created its command. An answer's Date header is SSM's time when it answered (whole seconds,
 * rounded down); the command was requested at most the attempt's duration before that. Without an
 * answer, this machine's clock at the start of the attempt, less a margin for skew.
 */
function earliestRequestTime(error: unknown, attempt: { readonly startedAtMs: number; readonly durationMs: number }, offsetMs: number): number {
  const date = (error as { $response?: { headers?: Record<string, string | undefined> } } | undefined)?.$response?.headers?.date;
  const answeredAt = date === undefined ? Number.NaN : Date.parse(date);
  if (Number.isFinite(answeredAt)) return answeredAt - attempt.durationMs - SERVER_CLOCK_SLACK_MS;
  return attempt.startedAtMs + offsetMs - SEND_SEARCH_MARGIN_SECONDS * 1000;
}

/** ListCommands' `InvokedAfter` takes whole seconds. */
function wholeSeconds(epochMs: number): string {
  return new Date(Math.floor(epochMs / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Sends `input` and returns the command, retrying throttling, service errors and dropped
 * connections until `deadlineMs` (`withRetries`). After a failure that may have created the
 * command, each further attempt first looks for it (the same request, requested no earlier than
 * the first such attempt began) and adopts it; one more look follows the last attempt. Throws the
 * refusal when SSM refused, `SendOutcomeUnknownError` when an answer was lost and the command
 * never showed up.
 */
export async function sendCommandOnce(ssm: SSMClient, input: SendCommandCommandInput, options: SendOnceOptions): Promise<Command> {
  /** Epoch ms by SSM's clock: no command of this request can be older. Set by the first lost answer. */
  let earliest: number | undefined;
  const findSent = async (): Promise<Command | undefined> => {
    const filters: CommandFilter[] = [
      { key: 'InvokedAfter', value: wholeSeconds(earliest!) },
      ...(input.DocumentName === undefined ? [] : [{ key: 'DocumentName' as const, value: input.DocumentName }]),
    ];
    const commands = await everyPage(paginateListCommands({ client: ssm }, { Filters: filters }), (page) => page.Commands);
    const candidates = commands.filter(
      (command) => command.CommandId !== undefined && (command.RequestedDateTime?.getTime() ?? 0) >= earliest! && isSameRequest(command, input),
    );
    return newest(candidates);
  };

  let answerLost: unknown;
  try {
    return await withRetries(
      async () => {
        if (answerLost !== undefined) {
          const sent = await findSent();
          if (sent !== undefined) return sent;
        }
        const startedAtMs = options.retry.now();
        // The attempt's duration on a clock no test fakes and no time sync moves.
        const startedTick = performance.now();
        try {
          const answer = await ssm.send(withoutSdkRetries(new SendCommandCommand(input)));
          if (answer.Command?.CommandId === undefined) throw new Error('SendCommand answered without a command id');
          return answer.Command;
        } catch (error) {
          if (mayHaveTakenEffect(error)) {
            answerLost = error;
            const from = earliestRequestTime(error, { startedAtMs, durationMs: performance.now() - startedTick }, clockOffsetMs(ssm));
            earliest = Math.min(earliest ?? from, from);
          }
          throw error;
        }
      },
      options.deadlineMs,
      options.retry,
    );
  } catch (error) {
    if (answerLost === undefined) throw error;
    const unknown = (last: unknown) => new SendOutcomeUnknownError(last, input.DocumentName ?? '?', input.Comment ?? '', wholeSeconds(earliest!));
    // The last look, after the last attempt: it may have been created all the same.
    let sent: Command | undefined;
    try {
      sent = await findSent();
    } catch (searchError) {
      throw unknown(searchError);
    }
    if (sent !== undefined) return sent;
    throw unknown(error);
  }
}

/**
 * Whether SSM's record of `command` is a send of `input`: the same document, comment, targets,
 * concurrency and parameters. SSM fills in what a request left out (the document's defaults,
 * MaxConcurrency for instance ids), so only what the request names is compared.
 */
export function isSameRequest(command: Command, input: SendCommandCommandInput): boolean {
  if (command.DocumentName !== input.DocumentName) return false;
  if ((command.Comment ?? '') !== (input.Comment ?? '')) return false;
  if (!sameList(command.InstanceIds, input.InstanceIds)) return false;
  if (!sameList((command.Targets ?? []).map(targetKey), (input.Targets ?? []).map(targetKey))) return false;
  if (input.MaxConcurrency !== undefined && command.MaxConcurrency !== input.MaxConcurrency) return false;
  if (input.MaxErrors !== undefined && command.MaxErrors !== input.MaxErrors) return false;
  return Object.entries(input.Parameters ?? {}).every(([name, values]) => sameList(command.Parameters?.[name], values, false));
}

function targetKey(target: Target): string {
  return JSON.stringify([target.Key ?? '', [...(target.Values ?? [])].sort()]);
}

function sameList(a: readonly string[] | undefined, b: readonly string[] | undefined, unordered = true): boolean {
  const [left, right] = [[...(a ?? [])], [...(b ?? [])]];
  if (unordered) {
    left.sort();
    right.sort();
  }
  return left.length === right.length && left.every((value, index) => value === right[index]);
}

/** The most recently requested command: if two match, ours is the later. */
function newest(commands: readonly Command[]): Command | undefined {
  const time = (command: Command) => command.RequestedDateTime?.getTime() ?? 0;
  return commands.reduce<Command | undefined>((best, command) => (best === undefined || time(command) > time(best) ? command : best), undefined);
}

/**
 * The command without the SDK's retry step: in its place, a step that passes the request on once.
 * The SDK names that step `retryMiddleware` (finalizeRequest, high priority); a command-level
 * step of that name overrides the client's for this command only.
 */
function withoutSdkRetries(command: SendCommandCommand): SendCommandCommand {
  command.middlewareStack.add((next) => (args) => next(args), {
    name: 'retryMiddleware',
    step: 'finalizeRequest',
    priority: 'high',
    override: true,
  });
  return command;
}
