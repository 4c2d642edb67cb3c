/**
 * Following a command's output as it grows. Pure.
 *
 * Two sources know the output: the command's CloudWatch Logs streams, which SSM Agent fills
 * while the script runs, and GetCommandInvocation, which returns the first 24,000 characters
 * of stdout (8,000 of stderr) only once the invocation has ended. Both hold the same lines from
 * the start, so each is read as "every line so far", and a follower prints the lines past
 * those it printed already, from whichever source knows more.
 */

/**
 * The complete lines of cumulative `text`. A last line without its newline is still being
 * written and is left out, unless the output has ended.
 */
export function completeLines(text: string | undefined, ended: boolean): string[] {
  const lines = (text ?? '').replace(/\r\n?/g, '\n').split('\n');
  const last = lines.pop()!;
  if (ended && last !== '') lines.push(last);
  return lines;
}

/** The lines of CloudWatch Logs events: each event holds one or more whole lines. */
export function eventLines(messages: readonly string[]): string[] {
  return messages.flatMap((message) => completeLines(message, true));
}

/** The longer of two views of the same output (one is a prefix of the other). */
export function longerOf(a: readonly string[], b: readonly string[]): readonly string[] {
  return b.length > a.length ? b : a;
}

/** Hands out each line of a growing output once, in order. */
export class LineFollower {
  private emitted = 0;

  /** The lines of `lines` (every line so far) not handed out before. */
  next(lines: readonly string[]): readonly string[] {
    const fresh = lines.slice(this.emitted);
    this.emitted = Math.max(this.emitted, lines.length);
    return fresh;
  }

  get count(): number {
    return this.emitted;
  }
}
