/** The app's own account of its start, read from its log: what deploy overhead is measured against. */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { notMeasured, type Figure } from './figures.js';

/** Size of a file now (0 when it does not exist): where to start reading what a deploy appends. */
export function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * The text of `path` from byte `offset` on ('' when missing). NUL bytes are dropped: a JVM that
 * kept writing to a log another process truncated leaves a hole of them.
 */
export function readFrom(path: string, offset: number): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const length = Math.max(0, statSync(path).size - offset);
    const buf = Buffer.alloc(length);
    const n = length ? readSync(fd, buf, 0, length, offset) : 0;
    return buf.subarray(0, n).toString('utf8').replaceAll('\0', '');
  } finally {
    closeSync(fd);
  }
}

const STARTED = /Started \S+ in ([\d.]+) seconds \(process running for ([\d.]+)\)/g;
const FAILED = /APPLICATION FAILED TO START: ([^\n]*)/;

/**
 * The app's own start-to-healthy time in seconds: Spring Boot's "process running for" (JVM
 * uptime when the app reported itself started) on the last "Started ..." line of `logText`.
 */
export function appStartSeconds(logText: string): Figure {
  const matches = [...logText.matchAll(STARTED)];
  const last = matches.at(-1);
  if (last) return Number(last[2]);
  const failed = FAILED.exec(logText);
  if (failed) return notMeasured(`the new app did not start: ${failed[1]!.trim()}`);
  return notMeasured('no "Started ... (process running for ...)" line in the app log');
}
