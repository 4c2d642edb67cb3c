/**
 * SendCommand at most once per request, for the custom resource and the operator command alike.
 *
 * SendCommand is not idempotent, and has no client token: when its answer is lost (a 5xx from a
 * request SSM had already acted on, a dropped connection), sending again creates a second
 * command, which runs the deploy twice. So each request carries a token at the end of its
 * Comment, and after an answer that may hide a created command, the next attempt first looks for
 * a command of this document with that token (ListCommands) and adopts it instead of sending.
 * The SDK's own retries would send again blind: they are off for SendCommand, whose retries are
 * these.
 */
import { createHash, randomBytes } from 'node:crypto';
import { paginateListCommands, SendCommandCommand, type Command, type CommandFilter, type SendCommandCommandInput, type SSMClient } from '@aws-sdk/client-ssm';
import { everyPage } from './pages.js';
import { mayHaveTakenEffect, withRetries, type RetryDependencies } from './retry.js';
import { COMMENT_MAX_CHARS } from './send-command.js';

/** A fresh token: 16 hex digits. */
export function newSendToken(): string {
  return randomBytes(8).toString('hex');
}

/**
 * The token of the request `key` names (CloudFormation's RequestId, say): the same for every
 * attempt at that request, also from another invocation.
 */
export function sendTokenFor(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** How the token ends a command's Comment, where the Run Command console shows it. */
export function sendTokenMark(token: string): string {
  return ` [send ${token}]`;
}

/** `comment` with the token's mark at its end, the comment cut so that both fit SendCommand's limit. */
export function commentWithToken(comment: string | undefined, token: string): string {
  const mark = sendTokenMark(token);
  const room = COMMENT_MAX_CHARS - mark.length;
  const text = comment ?? '';
  return `${text.length > room ? `${text.slice(0, room - 1)}…` : text}${mark}`;
}

/**
 * SendCommand's answer was lost, and no command with the request's token has shown up: the
 * command may run, or may never have been created.
 */
export class SendOutcomeUnknownError extends Error {
  constructor(
    /** The last error of the send (or of the search for it). */
    readonly lastError: unknown,
    readonly token: string,
    readonly documentName: string,
  ) {
    const { name, message } = lastError instanceof Error ? lastError : { name: 'Error', message: String(lastError) };
    super(
      `the answer to SendCommand was lost (${name}: ${message}) and no command of ${documentName} with "${sendTokenMark(token).trim()}" ` +
        'at the end of its comment shows up, so it may or may not have been created',
    );
    this.name = 'SendOutcomeUnknownError';
  }

  /** The AWS CLI line that lists the commands that could be it. */
  get findCommand(): string {
    return `aws ssm list-commands --filters key=DocumentName,value=${this.documentName} --query "Commands[?ends_with(Comment, '${sendTokenMark(this.token).trim()}')]"`;
  }
}

export interface SendOnceOptions {
  /** Epoch ms after which no further attempt starts. */
  readonly deadlineMs: number;
  /** Clock, sleep and jitter for the retries. */
  readonly retry: RetryDependencies;
  /** The request's token. @default - a fresh one (`newSendToken`) */
  readonly token?: string;
}

/** How far before the first attempt the search looks: clocks differ. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

/**
 * Sends `input` (its Comment ending with the request's token) and returns the command, retrying
 * throttling, service errors and dropped connections until `deadlineMs` (`withRetries`). After a
 * failure that may have created the command, each further attempt first looks for it and adopts
 * it. Throws the refusal when SSM refused, `SendOutcomeUnknownError` when an answer was lost and
 * the command never showed up.
 */
export async function sendCommandOnce(ssm: SSMClient, input: SendCommandCommandInput, options: SendOnceOptions): Promise<Command> {
  const token = options.token ?? newSendToken();
  const tagged: SendCommandCommandInput = { ...input, Comment: commentWithToken(input.Comment, token) };
  const mark = sendTokenMark(token);
  // ListCommands takes whole seconds.
  const since = new Date(options.retry.now() - CLOCK_SKEW_MS).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const findSent = async (): Promise<Command | undefined> => {
    const filters: CommandFilter[] = [
      { key: 'InvokedAfter' as const, value: since },
      ...(input.DocumentName === undefined ? [] : [{ key: 'DocumentName' as const, value: input.DocumentName }]),
    ];
    const commands = await everyPage(paginateListCommands({ client: ssm }, { Filters: filters }), (page) => page.Commands);
    return commands.find((command) => command.Comment?.endsWith(mark) === true && command.CommandId !== undefined);
  };

  let answerLost: unknown;
  try {
    return await withRetries(
      async () => {
        if (answerLost !== undefined) {
          const sent = await findSent();
          if (sent !== undefined) return sent;
        }
        try {
          const answer = await ssm.send(withoutSdkRetries(new SendCommandCommand(tagged)));
          if (answer.Command?.CommandId === undefined) throw new Error('SendCommand answered without a command id');
          return answer.Command;
        } catch (error) {
          if (mayHaveTakenEffect(error)) answerLost = error;
          throw error;
        }
      },
      options.deadlineMs,
      options.retry,
    );
  } catch (error) {
    if (answerLost === undefined) throw error;
    // The last look, after the last attempt: it may have been created all the same.
    let sent: Command | undefined;
    try {
      sent = await findSent();
    } catch (searchError) {
      throw new SendOutcomeUnknownError(searchError, token, input.DocumentName ?? '?');
    }
    if (sent !== undefined) return sent;
    throw new SendOutcomeUnknownError(error, token, input.DocumentName ?? '?');
  }
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
