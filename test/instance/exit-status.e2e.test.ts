/**
 * The engine's exit status: a code die() chose passes through, even from a $(...) subshell,
 * and any other failed command is EXIT_CODES.unexpected with the command named. Runs the
 * engine's own traps and functions in bash; no host, no ports.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { EXIT_CODE_TABLE, EXIT_CODES, exitCodeShellName, type ExitCodeName } from '../../lib/contract.js';
import { BLUEGREEN } from '../support/host.js';

/** Runs `body` in bash after sourcing the engine and setting the traps its commands run under. */
function engine(body: string): { code: number | null; stderr: string } {
  const script = `source '${BLUEGREEN}'\nset -Eeuo pipefail\ninstall_traps\n${body}\necho reached`;
  const result = spawnSync('bash', ['-c', script], { env: { PATH: process.env.PATH }, encoding: 'utf8' });
  expect(result.stdout).toBe('');
  return { code: result.status, stderr: result.stderr };
}

/** Runs `body` like engine() does, for a body that is meant to finish: its stdout too. */
function underTraps(body: string): { code: number | null; stdout: string; stderr: string } {
  const script = `source '${BLUEGREEN}'\nset -Eeuo pipefail\ninstall_traps\n${body}`;
  // stdin not a socket: bash -c on a socket takes itself for a remote shell and reads ~/.bashrc.
  const result = spawnSync('bash', ['-c', script], { env: { PATH: process.env.PATH }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const errorLines = (stderr: string) => stderr.split('\n').filter((line) => line.startsWith('bluegreen: error:'));

const CHOSEN = (Object.keys(EXIT_CODE_TABLE) as ExitCodeName[]).filter((name) => name !== 'ok');

describe('a code die() chose', () => {
  test.each(CHOSEN)('%s passes through from a $(...) subshell, with only its own message', (name) => {
    const result = engine(`value=$(die "$${exitCodeShellName(name)}" "chosen")`);
    expect(result.code).toBe(EXIT_CODES[name]);
    expect(errorLines(result.stderr)).toEqual(['bluegreen: error: chosen']);
  });

  test('passes through nested subshells', () => {
    const result = engine('outer=$(inner=$(die "$EXIT_LOCKED" "deep"); printf "%s" "$inner")');
    expect(result.code).toBe(EXIT_CODES.locked);
    expect(errorLines(result.stderr)).toEqual(['bluegreen: error: deep']);
  });

  test('passes through from the main shell', () => {
    const result = engine('die "$EXIT_NOTHING_TO_SWITCH_TO" "main"');
    expect(result.code).toBe(EXIT_CODES.nothingToSwitchTo);
    expect(errorLines(result.stderr)).toEqual(['bluegreen: error: main']);
  });
});

describe('a command that fails with a status of its own', () => {
  test.each(CHOSEN)('with the status of %s is still unexpected, and the message names it', (name) => {
    const code = EXIT_CODES[name];
    const result = engine(`sh -c 'exit ${code}'`);
    expect(result.code).toBe(EXIT_CODES.unexpected);
    expect(errorLines(result.stderr)).toEqual([expect.stringMatching(new RegExp(`^bluegreen: error: unexpected failure at \\S+ line \\d+, status ${code} from: sh -c 'exit ${code}' -- `))]);
    // The configuration is not read here, as when a command fails before it is: the trap copes.
    expect(result.stderr).not.toContain('unbound variable');
  });

  test('is unexpected inside a $(...) subshell too, said once', () => {
    const result = engine(`value=$(sh -c 'exit ${EXIT_CODES.unhealthy}')`);
    expect(result.code).toBe(EXIT_CODES.unexpected);
    expect(errorLines(result.stderr)).toEqual([expect.stringMatching(/unexpected failure at .*, status 5 from: sh -c 'exit 5' -- /)]);
  });

  test('is unexpected after a die() whose failure its caller handled, when the statuses differ', () => {
    const result = engine(`if value=$(die "$EXIT_LOCKED" "handled"); then :; fi\nsh -c 'exit ${EXIT_CODES.unhealthy}'`);
    expect(result.code).toBe(EXIT_CODES.unexpected);
    expect(errorLines(result.stderr)).toEqual(['bluegreen: error: handled', expect.stringMatching(/status 5 from: sh -c 'exit 5'/)]);
  });
});

describe('a file that is gone when the engine reads it', () => {
  // A process that exits between pid_alive's check and its read of /proc/PID/stat, a pid file
  // removed under 'status': under bash 5.2 a $(<FILE) there ended the engine with status 1 and
  // no message, in the middle of a deploy's error path.
  test('read_file returns 1 and the engine goes on', () => {
    const result = underTraps('read_file /nonexistent/file text && exit 9\nprintf "[%s]" "$text"');
    expect(result).toEqual({ code: 0, stdout: '[]', stderr: '' });
  });

  test('read_file gives the text as $(<FILE) would, trailing newlines dropped', () => {
    const result = underTraps('f=$(mktemp)\nprintf \'a\\n\\nb c\\n\\n\\n\' >"$f"\nread_file "$f" text\nrm -f "$f"\nprintf "[%s]" "$text"');
    expect(result).toEqual({ code: 0, stdout: '[a\n\nb c]', stderr: '' });
  });
});

describe('a signal that arrives while a command has stderr sent elsewhere', () => {
  // The engine's quick checks (a port, a /proc entry, a health probe) run with 2>/dev/null, and
  // a SIGTERM runs its trap inside whichever one is running: what became of the deploy must
  // still reach the caller's stderr.
  test('SIGTERM during a deploy still says where the warm standby stands', () => {
    const result = underTraps('PENDING_STANDBY=blue\n(pause 0.3; kill -TERM $$) &\n{ pause 5; } 2>/dev/null\necho not-reached');
    expect(result.code).toBe(143);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^bluegreen: the deploy was stopped while it replaced the warm standby on blue; the next bluegreen deploy, rollback or switch puts that standby back first\.\n$/);
  });
});
