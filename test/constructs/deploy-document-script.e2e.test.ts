/**
 * The deploy document's shell step, as the stack renders it and as written in
 * assets/ssm/bluegreen-document.sh, checked by bash and shellcheck (end-to-end because it starts
 * them; the document's other properties are unit tests in deploy-document.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { projectPath } from '../../lib/paths.js';
import { documentContent, synthesize } from './synth.js';

// GIVEN the stack as cdk.json configures it.
const { template } = synthesize();
const content = documentContent(template) as { mainSteps: Array<{ inputs: { runCommand: string[] } }> };
const step = content.mainSteps[0]!;

describe('document', () => {
  test('the script passes bash -n and shellcheck, as rendered and as written', () => {
    const rendered = join(mkdtempSync(join(tmpdir(), 'bluegreen-doc-')), '_script.sh');
    writeFileSync(rendered, `${step.inputs.runCommand.join('\n')}\n`);
    for (const file of [rendered, projectPath('assets', 'ssm', 'bluegreen-document.sh')]) {
      expect(spawnSync('bash', ['-n', file], { encoding: 'utf8' }).status).toBe(0);
      const shellcheck = spawnSync('shellcheck', ['--shell=bash', file], { encoding: 'utf8' });
      expect(shellcheck.stdout).toBe('');
      expect(shellcheck.status).toBe(0);
    }
  });
});
