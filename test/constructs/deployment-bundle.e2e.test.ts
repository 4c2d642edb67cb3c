/**
 * The deploy handlers' bundle as `cdk synth` builds it (esbuild, started by the CDK): it loads on
 * Node.js with the SDK left out, as Lambda's runtime provides it, and exports the handlers the
 * functions name. End-to-end because bundling starts esbuild; the unit project synthesizes
 * without bundling (vitest.config.ts).
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { describe, expect, test } from 'vitest';
import { BlueGreenDeployment } from '../../lib/constructs/bluegreen-deployment.js';
import { DeployDocument } from '../../lib/constructs/deploy-document.js';
import { DEPLOY_HANDLERS } from '../../lib/contract.js';
import { projectPath } from '../../lib/paths.js';

describe('BlueGreenDeployment', () => {
  test('ships a bundle that loads on Node.js with the SDK left out, exporting the handlers it names', async () => {
    mkdirSync(projectPath('.build'), { recursive: true });
    const outdir = mkdtempSync(join(projectPath('.build'), 'deployment-synth-'));
    try {
      // GIVEN a stack with the real deploy document and a deployment.
      const app = new App({ outdir });
      const stack = new Stack(app, 'DeploymentTest');
      new BlueGreenDeployment(stack, 'Deployment', {
        instance: 'i-0123456789abcdef0',
        document: new DeployDocument(stack, 'DeployDocument'),
        artifact: { uri: 's3://artifacts-bucket/releases/app.jar', sha256: 'ab'.repeat(32), version: 'v2' },
      });
      const assembly = app.synth();
      const bundles = readdirSync(assembly.directory)
        .filter((entry) => entry.startsWith('asset.'))
        .map((entry) => join(assembly.directory, entry, 'index.mjs'))
        .filter((file) => {
          try {
            return readFileSync(file, 'utf8').includes('SendCommandCommand');
          } catch {
            return false;
          }
        });
      expect(bundles).toHaveLength(1);
      const code = readFileSync(bundles[0]!, 'utf8');
      expect(code).toMatch(/from\s*"@aws-sdk\/client-ssm"/);
      expect(code.length).toBeLessThan(40_000);
      // Inside the project, so that Node resolves the SDK from its node_modules as Lambda's runtime provides it.
      const runDir = join(outdir, 'run');
      mkdirSync(runDir);
      cpSync(bundles[0]!, join(runDir, 'index.mjs'));
      const module = (await import(join(runDir, 'index.mjs'))) as Record<string, unknown>;
      for (const handler of Object.values(DEPLOY_HANDLERS)) expect(typeof module[handler]).toBe('function');
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});
