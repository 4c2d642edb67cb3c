/**
 * One rule for the label of a release deployed without one: defaultReleaseLabel in
 * lib/contract.ts, which the stack and the operator command use. The engine and the first boot
 * apply it in bash; this runs their code for the same jars and compares. Fast: no host.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { DEFAULT_RELEASE_LABEL_PREFIX, DOCUMENT_PARAM_PATTERNS, defaultReleaseLabel } from '../../lib/contract.js';
import { projectPath } from '../../lib/paths.js';

const SHAS = ['9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', '0'.repeat(64), 'f'.repeat(64)];

/** Runs a bash script with the jar's sha256 as $1 and nothing from this process's environment but PATH. */
function bash(script: string, sha256: string): string {
  const result = spawnSync('bash', ['-c', script, 'bash', sha256], { env: { PATH: process.env.PATH }, encoding: 'utf8' });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout;
}

describe('the default release label', () => {
  test.each(SHAS)('for sha256 %s is the same in the contract, the engine and the first boot', (sha256) => {
    const label = defaultReleaseLabel(sha256);
    expect(label).toBe(`${DEFAULT_RELEASE_LABEL_PREFIX}${sha256.slice(0, 12)}`);
    const engine = bash(`source '${projectPath('assets', 'instance', 'lib', 'common.sh')}'; default_release_label "$1"`, sha256);
    expect(engine).toBe(label);
    const bootstrap = bash(
      `source '${projectPath('assets', 'userdata', 'bootstrap.sh')}'
       RECORDED_URI=s3://bucket/app.jar RECORDED_SHA256=$1 RECORDED_VERSION=''
       use_recorded_release
       printf '%s' "$ARTIFACT_VERSION"`,
      sha256,
    );
    expect(bootstrap).toBe(label);
  });

  test('is a version the document and the engine accept', () => {
    const label = defaultReleaseLabel(SHAS[0]!);
    expect(label).toBe('sha256-9f86d081884c');
    expect(label).toMatch(new RegExp(DOCUMENT_PARAM_PATTERNS.version));
    // cmd_deploy's own check of --version, read from the engine.
    const engine = readFileSync(projectPath('assets', 'instance', 'bin', 'bluegreen'), 'utf8');
    const pattern = /\$version =~ (\S+) \]\]/.exec(engine)?.[1];
    expect(pattern).toBeDefined();
    expect(label).toMatch(new RegExp(pattern!));
  });
});
