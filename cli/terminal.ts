/** Where the command writes, and who it says asked: shared by the one-host and the fleet paths. */
import { hostname, userInfo } from 'node:os';

export interface Terminal {
  /** One line of the result or of the host's stdout. */
  out(line: string): void;
  /** One line of the host's stderr, or of this command's own notes. */
  err(line: string): void;
}

export const processTerminal: Terminal = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

export function note(terminal: Terminal, text: string): void {
  terminal.err(`ec2-bluegreen: ${text}`);
}

/** `user@host`, for the Run Command console's comment and the fleet's release record. */
export function requester(): string {
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): keep $USER.
  }
  return `${user}@${hostname()}`;
}
