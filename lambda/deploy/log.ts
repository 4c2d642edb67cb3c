/** Structured logs: one JSON object per line, which CloudWatch Logs Insights reads field by field. */

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** A logger that writes each entry as one JSON line to `write` (stdout by default). */
export function jsonLogger(
  base: LogFields = {},
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Logger {
  const entry = (level: string) => (message: string, fields: LogFields = {}) => {
    // These three lead every line and cannot be overwritten by a field of the same name.
    const { time: _time, level: _level, message: _message, ...rest } = { ...base, ...fields };
    write(JSON.stringify({ time: new Date().toISOString(), level, message, ...rest }, errorsAsObjects));
  };
  return { info: entry('INFO'), warn: entry('WARN'), error: entry('ERROR') };
}

/** `JSON.stringify` drops an Error's own fields; keep the ones that explain it. */
function errorsAsObjects(_key: string, value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  const aws = value as Error & { $metadata?: { httpStatusCode?: number; requestId?: string } };
  return { name: aws.name, message: aws.message, httpStatusCode: aws.$metadata?.httpStatusCode, requestId: aws.$metadata?.requestId };
}
