/**
 * The context checks as a user meets them: `npx cdk synth` runs bin/app.ts with cdk.json's
 * context, the keys the CDK CLI adds itself (`aws:cdk:*`) and the `-c` values. None of CDK's keys
 * trips the misspelling check; a misspelled key fails synth; a far unknown key warns.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { PROJECT_DIR } from '../../lib/paths.js';
import { fakeJar } from './synth.js';

const output = mkdtempSync(join(tmpdir(), 'bluegreen-cdk-synth-'));

function cdkSynth(...context: string[]): { status: number | null; output: string } {
  const args = ['cdk', 'synth', '--quiet', '--output', output, '-c', `artifact=${fakeJar()}`, ...context.flatMap((entry) => ['-c', entry])];
  const run = spawnSync('npx', args, { cwd: PROJECT_DIR, encoding: 'utf8', timeout: 180_000, env: { ...process.env, CDK_DISABLE_VERSION_CHECK: 'true' } });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

test('cdk synth with cdk.json and the CLI\'s own keys: no error, no warning about context', () => {
  const run = cdkSynth();
  expect(run.status, run.output).toBe(0);
  expect(run.output).not.toMatch(/not read by this app|reads no such key/);
});

test('cdk synth -c host=3 fails with did you mean, and builds nothing', () => {
  const run = cdkSynth('host=3');
  expect(run.status).not.toBe(0);
  expect(run.output).toContain(
    "ec2-bluegreen: Context 'host' = \"3\": this app reads no such key, so the value would be ignored and the default built instead; did you mean 'hosts'?",
  );
});

test('cdk synth -c stage=prod builds the stack and warns that the key is ignored', () => {
  const run = cdkSynth('stage=prod');
  expect(run.status, run.output).toBe(0);
  expect(run.output).toMatch(/WARNING Context 'stage' is not read by this app, so its value is ignored\./);
  expect(run.output).not.toMatch(/['"]prod['"]/);
});
