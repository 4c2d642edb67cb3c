/**
 * Imports run inward (.dependency-cruiser.cjs): lib/ reaches out to nothing, lambda/ and cli/
 * use lib/ and never each other nor the harnesses, and nothing shipped imports test/. The same
 * check as `npm run lint:deps`, on the repository, through dependency-cruiser's own API (in this
 * process: a unit test starts no program); then the rules themselves, on a small tree with every
 * wrong-way import in it, so that a rule that stopped matching fails here too.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { cruise, type ICruiseResult } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectPath } from '../lib/paths.js';

const CONFIG = projectPath('.dependency-cruiser.cjs');

/** The directories `npm run lint:deps` cruises, read from the script itself so that the two stay one. */
function lintedDirectories(): string[] {
  const scripts = (JSON.parse(readFileSync(projectPath('package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const script = scripts['lint:deps'];
  if (script === undefined) throw new Error('package.json has no lint:deps script');
  const words = script.trim().split(/\s+/);
  expect(words.slice(0, 3)).toEqual(['depcruise', '--config', '.dependency-cruiser.cjs']);
  return words.slice(3);
}

interface Violation {
  readonly rule: string;
  readonly from: string;
  readonly to: string;
}

/**
 * Cruises `directories` of `baseDir` with the project's rules, as `depcruise --config` does from
 * there; `exitCode` is the number of errors, which fails `npm run lint:deps`.
 */
async function cruiseWithProjectRules(baseDir: string, directories: readonly string[], outputType: 'err' | 'json') {
  const options = await extractDepcruiseOptions(CONFIG);
  const tsConfig = join(baseDir, 'tsconfig.json');
  const result = await cruise([...directories], { ...options, baseDir, outputType, tsConfig: { fileName: tsConfig } }, {}, { tsConfig: extractTSConfig(tsConfig) });
  // Both reporters give text: 'err' its report, 'json' the cruise result serialized.
  return { exitCode: result.exitCode, output: String(result.output) };
}

function violations(json: string): Violation[] {
  const output = JSON.parse(json) as ICruiseResult;
  return output.summary.violations.map((entry) => ({ rule: entry.rule.name, from: entry.from, to: entry.to }));
}

describe('which way imports run', () => {
  test('the repository breaks none of the rules', async () => {
    const directories = lintedDirectories();
    expect(directories).toEqual(expect.arrayContaining(['lib', 'lambda', 'cli', 'scripts', 'bench', 'test']));
    const result = await cruiseWithProjectRules(projectPath(), directories, 'err');
    const report = result.output.trim();
    expect(result.exitCode, `dependency-cruiser (npm run lint:deps) found imports that run the wrong way:\n${report}`).toBe(0);
    // A run that cruised nothing (a moved directory, a broken config) also finds nothing.
    expect(report).toMatch(/no dependency violations found \(\d{3,} modules/);
  });

  describe('the rules, on a tree with every wrong-way import', () => {
    let fixture = '';
    afterAll(() => rmSync(fixture, { recursive: true, force: true }));

    const files: Record<string, string> = {
      'lib/contract.ts': 'export const NAME = 1;\n',
      'lambda/handler.ts': 'export const HANDLER = 1;\n',
      'cli/command.ts': 'export const COMMAND = 1;\n',
      'scripts/lib/host.ts': 'export interface Status { readonly live: string }\n',
      'bench/lib/harness.ts': 'export const HARNESS = 1;\n',
      'test/support/fake.ts': 'export const FAKE = 1;\n',

      // Wrong way, one file each so that each violation names its own.
      'lib/to-lambda.ts': "import { HANDLER } from '../lambda/handler.js';\nexport const A = HANDLER;\n",
      'lib/to-cli.ts': "import { COMMAND } from '../cli/command.js';\nexport const A = COMMAND;\n",
      'lib/constructs/to-scripts.ts': "import type { Status } from '../../scripts/lib/host.js';\nexport type A = Status;\n",
      'lib/to-bench.ts': "import { HARNESS } from '../bench/lib/harness.js';\nexport const A = HARNESS;\n",
      'lib/to-test.ts': "import { FAKE } from '../test/support/fake.js';\nexport const A = FAKE;\n",
      'cli/to-scripts.ts': "import type { Status } from '../scripts/lib/host.js';\nexport type A = Status;\n",
      'cli/to-lambda.ts': "import { HANDLER } from '../lambda/handler.js';\nexport const A = HANDLER;\n",
      'cli/to-test.ts': "import { FAKE } from '../test/support/fake.js';\nexport const A = FAKE;\n",
      'lambda/to-bench.ts': "import { HARNESS } from '../bench/lib/harness.js';\nexport const A = HARNESS;\n",
      'lambda/to-cli.ts': "import { COMMAND } from '../cli/command.js';\nexport const A = COMMAND;\n",
      'lambda/to-test.ts': "import { FAKE } from '../test/support/fake.js';\nexport const A = FAKE;\n",

      // The right way: inward, and harnesses using anything.
      'lambda/uses-lib.ts': "import { NAME } from '../lib/contract.js';\nexport const A = NAME;\n",
      'cli/uses-lib.ts': "import { NAME } from '../lib/contract.js';\nexport const A = NAME;\n",
      'scripts/lib/uses-lib.ts': "import { NAME } from '../../lib/contract.js';\nexport const A = NAME;\n",
      'bench/lib/uses-scripts.ts': "import type { Status } from '../../scripts/lib/host.js';\nexport type A = Status;\n",
      'test/uses-everything.ts':
        "import { NAME } from '../lib/contract.js';\nimport { HANDLER } from '../lambda/handler.js';\nimport { COMMAND } from '../cli/command.js';\n" +
        "import type { Status } from '../scripts/lib/host.js';\nimport { HARNESS } from '../bench/lib/harness.js';\n" +
        'export const A = [NAME, HANDLER, COMMAND, HARNESS];\nexport type B = Status;\n',
    };
    beforeAll(() => {
      fixture = mkdtempSync(join(tmpdir(), 'bluegreen-imports-'));
      for (const [path, text] of Object.entries(files)) {
        mkdirSync(dirname(join(fixture, path)), { recursive: true });
        writeFileSync(join(fixture, path), text);
      }
      writeFileSync(join(fixture, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }));
    });

    test('each wrong-way import fails under its rule, and nothing else does', async () => {
      const result = await cruiseWithProjectRules(fixture, ['lib', 'lambda', 'cli', 'scripts', 'bench', 'test'], 'json');
      const byFrom = (a: Violation, b: Violation) => a.from.localeCompare(b.from);
      expect(violations(result.output).sort(byFrom)).toEqual(
        [
          { rule: 'lib-imports-inward-only', from: 'lib/to-lambda.ts', to: 'lambda/handler.ts' },
          { rule: 'lib-imports-inward-only', from: 'lib/to-cli.ts', to: 'cli/command.ts' },
          { rule: 'lib-imports-inward-only', from: 'lib/constructs/to-scripts.ts', to: 'scripts/lib/host.ts' },
          { rule: 'lib-imports-inward-only', from: 'lib/to-bench.ts', to: 'bench/lib/harness.ts' },
          { rule: 'shipped-code-not-from-tests', from: 'lib/to-test.ts', to: 'test/support/fake.ts' },
          { rule: 'shipped-code-not-from-harnesses', from: 'cli/to-scripts.ts', to: 'scripts/lib/host.ts' },
          { rule: 'cli-and-lambda-are-siblings', from: 'cli/to-lambda.ts', to: 'lambda/handler.ts' },
          { rule: 'shipped-code-not-from-tests', from: 'cli/to-test.ts', to: 'test/support/fake.ts' },
          { rule: 'shipped-code-not-from-harnesses', from: 'lambda/to-bench.ts', to: 'bench/lib/harness.ts' },
          { rule: 'lambda-and-cli-are-siblings', from: 'lambda/to-cli.ts', to: 'cli/command.ts' },
          { rule: 'shipped-code-not-from-tests', from: 'lambda/to-test.ts', to: 'test/support/fake.ts' },
        ].sort(byFrom),
      );
    });

    test('lint:deps fails on them (one error each) and its report names the rule, the importing file and the imported one', async () => {
      const result = await cruiseWithProjectRules(fixture, ['lib'], 'err');
      expect(result.exitCode).toBe(5);
      expect(result.output).toContain('error lib-imports-inward-only: lib/constructs/to-scripts.ts → scripts/lib/host.ts');
      expect(result.output).toContain('error shipped-code-not-from-tests: lib/to-test.ts → test/support/fake.ts');
    });
  });
});
