/**
 * The bundled operator command the fleet's Jenkins runs (lib/jenkins-tools.ts), run for real with
 * node alone, away from the project. The bundle's build and the Jenkins tools are
 * jenkins-tools.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { CLI_BUNDLE_NAME, cliBundle } from '../../lib/jenkins-tools.js';

describe('the bundled operator command', () => {
  test('is one file that runs with node alone, outside the project (no node_modules, no tsx)', () => {
    const bundle = cliBundle();
    const elsewhere = mkdtempSync(join(tmpdir(), 'bluegreen-bundle-'));
    cpSync(bundle, join(elsewhere, CLI_BUNDLE_NAME));
    const help = spawnSync(process.execPath, [join(elsewhere, CLI_BUNDLE_NAME), '--help'], { cwd: elsewhere, encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: npx ec2-bluegreen COMMAND/);
    expect(help.stdout).toContain('--fleet-from-env');
    const usage = spawnSync(process.execPath, [join(elsewhere, CLI_BUNDLE_NAME), 'deploy', 'app.jar', '--fleet-from-env'], { cwd: elsewhere, encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/^ec2-bluegreen: --fleet-from-env needs FLEET_DOCUMENT, FLEET_TARGET, FLEET_RELEASE_PARAMETER, FLEET_UPLOAD_LOCATION/);
    expect(readFileSync(bundle, 'utf8')).not.toMatch(/from ['"]@aws-sdk\//);
  });
});
