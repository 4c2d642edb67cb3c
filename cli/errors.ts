/**
 * Exit codes of `ec2-bluegreen`. A command that ran on the host exits with the host's code
 * (EXIT_CODE_TABLE in lib/contract.ts); this command's own failures reuse 2 and 3 where they
 * mean the same, and add 9 and 10 for what only happens on the way there.
 */
import { EXIT_CODES } from '../lib/contract.js';
import { redactCredentials } from '../lib/redact.js';

export const CLI_EXIT_CODES = {
  ...EXIT_CODES,
  /** SSM ended the command without the script's exit status: timed out, cancelled, undeliverable. */
  didNotFinish: 10,
  /** Nothing was sent: the stack, the instance, S3 or an AWS permission is not as it must be. */
  aws: 9,
  /** Ctrl-C: we stopped following; the command goes on on the host. */
  interrupted: 130,
  /** SIGTERM (a CI system aborting the build): we stopped following; the command goes on on the hosts. */
  terminated: 143,
} as const;

/**
 * A failure the user can act on: its message is printed, and the process exits with `exitCode`.
 * A credential in it (a URL's user info or signature, a token) is replaced by a marker first:
 * messages echo what was given, and a terminal or a CI log must not keep a password.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(redactCredentials(message));
    this.name = 'CliError';
  }
}
