/**
 * EXIT_CODE_TABLE (lib/contract.ts) is the one table of exit codes. The bash side keeps its own
 * copies, since the host has no TypeScript: this checks each against the table, by name and by
 * number, and fails on a code that only one side has. Fast: one bash per check, no host.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { App, Stack } from 'aws-cdk-lib';
import { describe, expect, test } from 'vitest';
import { DeployDocument } from '../../lib/constructs/deploy-document.js';
import { EXIT_CODE_TABLE, EXIT_CODES, exitCodeEntry, exitCodeShellName, type ExitCodeName } from '../../lib/contract.js';
import { projectPath } from '../../lib/paths.js';
import { describeExitStatus } from '../../lib/deploy/invocation.js';

const COMMON_SH = projectPath('assets', 'instance', 'lib', 'common.sh');
const ENGINE = projectPath('assets', 'instance', 'bin', 'bluegreen');
const DOCUMENT_SCRIPT = projectPath('assets', 'ssm', 'bluegreen-document.sh');

const NAMES = Object.keys(EXIT_CODE_TABLE) as ExitCodeName[];

/** The table as the engine spells it: `EXIT_BAD_ARTIFACT` -> `3`. */
const SHELL_TABLE = Object.fromEntries(NAMES.map((name) => [exitCodeShellName(name), String(EXIT_CODE_TABLE[name].code)]));

/** Runs a bash script with nothing from this process's environment but PATH. */
function bash(script: string): string {
  const result = spawnSync('bash', ['-c', script], { env: { PATH: process.env.PATH }, encoding: 'utf8' });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout;
}

describe('EXIT_CODE_TABLE', () => {
  test('numbers each code once, from 0, with a one-line meaning', () => {
    const codes = NAMES.map((name) => EXIT_CODE_TABLE[name].code);
    expect(codes).toEqual(codes.map((_code, index) => index));
    for (const name of NAMES) expect(EXIT_CODE_TABLE[name].meaning).toMatch(/^[^\n.]+$/);
  });

  test('EXIT_CODES and exitCodeEntry read it by name and by number', () => {
    expect(EXIT_CODES.unhealthy).toBe(5);
    expect(Object.keys(EXIT_CODES)).toEqual(NAMES);
    expect(exitCodeEntry(EXIT_CODES.rolledBack)).toEqual({ name: 'rolledBack', ...EXIT_CODE_TABLE.rolledBack });
    expect(exitCodeEntry(127)).toBeUndefined();
  });

  test('names the engine variables the way common.sh spells them', () => {
    expect(exitCodeShellName('ok')).toBe('EXIT_OK');
    expect(exitCodeShellName('badArtifact')).toBe('EXIT_BAD_ARTIFACT');
    expect(exitCodeShellName('nothingToSwitchTo')).toBe('EXIT_NOTHING_TO_SWITCH_TO');
  });
});

describe('the engine', () => {
  test("common.sh's readonly EXIT_* variables are the table, name for name and number for number", () => {
    const declared = bash(`source '${COMMON_SH}'; declare -p "\${!EXIT_@}"`)
      .trim()
      .split('\n')
      .map((line) => {
        const match = /^declare -(\S+) (EXIT_\w+)="(.*)"$/.exec(line);
        expect(match, `a declaration of one EXIT_ variable: ${line}`).not.toBeNull();
        expect(match![1], `${match![2]} is readonly`).toContain('r');
        return [match![2]!, match![3]!];
      });
    expect(Object.fromEntries(declared)).toEqual(SHELL_TABLE);
  });

  test("'bluegreen help' lists every code with the table's meaning, in order", () => {
    const help = bash(`'${ENGINE}' help`);
    const paragraph = help.slice(help.indexOf('\nExit codes')).split('\n').slice(2);
    const listed: Array<[number, string]> = [];
    for (const line of paragraph) {
      const match = /^ {2}(\d+) {2}(\S.*)$/.exec(line);
      if (match === null) break;
      listed.push([Number(match[1]), match[2]!]);
    }
    expect(listed).toEqual(NAMES.map((name) => [EXIT_CODE_TABLE[name].code, EXIT_CODE_TABLE[name].meaning]));
  });
});

describe('the SSM document', () => {
  const script = readFileSync(DOCUMENT_SCRIPT, 'utf8');

  test('declares the codes it uses with the numbers of the table, and uses only those', () => {
    const declared = Object.fromEntries([...script.matchAll(/^readonly (EXIT_\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    const used = new Set([...script.matchAll(/\$\{?(EXIT_\w+)/g)].map((m) => m[1]!));
    expect(Object.keys(declared).length).toBeGreaterThan(0);
    expect(new Set(Object.keys(declared))).toEqual(used);
    for (const [name, value] of Object.entries(declared)) {
      expect(SHELL_TABLE, `${name} is a code of the table`).toHaveProperty(name);
      expect(value, name).toBe(SHELL_TABLE[name]);
    }
  });

  test("the description lists every code with the table's meaning", () => {
    const document = new DeployDocument(new Stack(new App(), 'Doc'), 'Document');
    const description = (document.document.content as { description: string }).description;
    for (const name of NAMES) {
      expect(description).toContain(`${EXIT_CODE_TABLE[name].code} ${EXIT_CODE_TABLE[name].meaning}`);
    }
  });
});

describe('the deploy', () => {
  test("explains a failed command's exit status with the table's meaning", () => {
    for (const name of NAMES) {
      expect(describeExitStatus(EXIT_CODE_TABLE[name].code)).toBe(`exit status ${EXIT_CODE_TABLE[name].code} (${EXIT_CODE_TABLE[name].meaning})`);
    }
    expect(describeExitStatus(127)).toBe('exit status 127');
  });
});

describe('docs/exit-codes.md, which the README links to', () => {
  test("its exit-code table has every code with the table's meaning, in order, and no other", () => {
    const page = readFileSync(projectPath('docs', 'exit-codes.md'), 'utf8');
    const start = page.indexOf('\n## The codes\n');
    expect(start).toBeGreaterThan(0);
    const section = page.slice(start + 1).split('\n').slice(1);
    const end = section.findIndex((line) => line.startsWith('#'));
    const [header, separator, ...rows] = section
      .slice(0, end)
      .filter((line) => line.startsWith('|'))
      .map((line) => line.split(/(?<!\\)\|/).slice(1, -1).map((cell) => cell.trim()));
    expect(header!.slice(0, 2)).toEqual(['code', 'meaning']);
    expect(separator!.every((cell) => /^-+$/.test(cell))).toBe(true);
    expect(rows.map((cells) => [cells[0], cells[1]])).toEqual(
      NAMES.map((name) => [String(EXIT_CODE_TABLE[name].code), EXIT_CODE_TABLE[name].meaning]),
    );
  });
});
