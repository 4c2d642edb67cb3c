/**
 * bluegreen-pipeline, the Jenkinsfile's shell steps, against a real local host: real Nginx, real
 * JVMs, the real engine; build, then deploy on the host or as a stack update.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectPath } from '../../lib/paths.js';
import { BLUEGREEN, LocalHost } from '../support/host.js';
import { JENKINS_DIR, PIPELINE, run, scratch, scratchFile } from './support.js';

const SAMPLE_APP_BUILD = projectPath('assets', 'sample-app', 'build');
const PORTS = { nginx: 18610, blue: 18611, green: 18612 };

describe('bluegreen-pipeline, the Jenkinsfile steps, against a real local host', () => {
  const host = new LocalHost(PORTS, join(scratch, 'host'));
  const git = (workspace: string, ...args: string[]) =>
    run('git', ['-c', 'user.name=CI', '-c', 'user.email=ci@example.invalid', '-c', 'commit.gpgsign=false', ...args], { cwd: workspace });

  /**
   * A checkout of an app repository: a Gradle wrapper stand-in that builds the sample app as
   * the commit's version into build/libs/ (beside a plain jar, as Spring Boot's build does).
   */
  function appCheckout(behaviour = 'normal'): { workspace: string; version: string } {
    const workspace = mkdtempSync(join(scratch, 'workspace-'));
    writeFileSync(
      join(workspace, 'gradlew'),
      [
        '#!/usr/bin/env bash',
        'set -euo pipefail',
        '[[ "$*" == "build --no-daemon" ]] || { echo "unexpected gradlew arguments: $*" >&2; exit 64; }',
        'version=$(git rev-parse --short HEAD)',
        `${JSON.stringify(SAMPLE_APP_BUILD)} --version "$version" --out build/libs/app.jar --behaviour ${behaviour}`,
        'cp build/libs/app.jar build/libs/app-plain.jar',
        '',
      ].join('\n'),
    );
    chmodSync(join(workspace, 'gradlew'), 0o755);
    writeFileSync(join(workspace, 'Jenkinsfile'), readFileSync(join(JENKINS_DIR, 'Jenkinsfile')));
    expect(git(workspace, 'init', '-q').code).toBe(0);
    expect(git(workspace, 'add', '.').code).toBe(0);
    expect(git(workspace, 'commit', '-q', '-m', `app (${behaviour})`).code).toBe(0);
    return { workspace, version: git(workspace, 'rev-parse', '--short', 'HEAD').stdout.trim() };
  }

  function pipeline(step: 'build' | 'deploy', workspace: string, env: Record<string, string> = {}) {
    return run(PIPELINE, [step], { cwd: workspace, env: host.env({ BLUEGREEN_COMMAND: BLUEGREEN, ...env }) });
  }

  beforeAll(() => {
    mkdirSync(host.dir, { recursive: true });
    host.up();
  });
  afterAll(() => host.destroy());

  test('build then deploy (DEPLOY_MODE=host): the site serves the commit, labelled with its short id; the next commit swaps slots', async () => {
    for (const [round, slot] of [[1, 'blue'], [2, 'green']] as const) {
      // GIVEN a pushed commit
      const { workspace, version } = appCheckout();

      // WHEN Jenkins runs the two steps
      const build = pipeline('build', workspace);
      const deploy = pipeline('deploy', workspace, { DEPLOY_MODE: 'host' });

      // THEN
      expect(build.code, build.stderr).toBe(0);
      expect(deploy.code, `round ${round}: ${deploy.stderr}`).toBe(0);
      expect(deploy.stdout).toContain(`deploying ${join(workspace, 'build', 'libs', 'app.jar')} as ${version} on this host`);
      expect(await host.servedVersion()).toBe(version);
      expect(host.status()).toMatchObject({ live: slot, slots: { [slot]: { version, running: true, healthy: true } } });
    }
    expect(host.history().map((entry) => [entry.action, entry.result])).toEqual([
      ['deploy', 'ok'],
      ['deploy', 'ok'],
    ]);
  });

  test("a release that never gets healthy fails the build with bluegreen's exit code, and the site keeps serving the previous one", async () => {
    // GIVEN a live release
    const live = await host.servedVersion();
    const { workspace } = appCheckout('never-healthy');
    expect(pipeline('build', workspace).code).toBe(0);

    // WHEN
    const deploy = pipeline('deploy', workspace, { BLUEGREEN_HEALTH_TIMEOUT: '2' });

    // THEN
    expect(deploy.code).toBe(5);
    expect(deploy.stderr).toContain('the deploy failed (bluegreen exit 5)');
    expect(await host.servedVersion()).toBe(live);
  });

  test('DEPLOY_MODE=stack runs cdk deploy from the CDK project with the absolute jar and the commit as context', () => {
    // GIVEN a built checkout, a CDK project checkout and a CDK CLI stand-in that records its call
    const { workspace, version } = appCheckout();
    expect(pipeline('build', workspace).code).toBe(0);
    const cdkProject = mkdtempSync(join(scratch, 'cdk-project-'));
    writeFileSync(join(cdkProject, 'cdk.json'), '{"app":"npx tsx bin/app.ts"}\n');
    mkdirSync(join(cdkProject, 'node_modules'));
    const record = join(scratch, 'cdk-call');
    const cdk = scratchFile('cdk', `#!/bin/bash\n{ pwd; printf '%s\\n' "$@"; } > ${JSON.stringify(record)}\n`);
    chmodSync(cdk, 0o755);

    // WHEN
    const deploy = pipeline('deploy', workspace, { DEPLOY_MODE: 'stack', CDK_PROJECT_DIR: cdkProject, CDK_COMMAND: cdk });

    // THEN
    expect(deploy.code, deploy.stderr).toBe(0);
    expect(readFileSync(record, 'utf8').trim().split('\n')).toEqual([
      cdkProject,
      'deploy',
      '--require-approval',
      'never',
      '--progress',
      'events',
      '-c',
      `artifact=${join(workspace, 'build', 'libs', 'app.jar')}`,
      '-c',
      `artifactVersion=${version}`,
    ]);
  });

  test.each<[string, (workspace: string) => void, Record<string, string>, RegExp]>([
    ['an unknown DEPLOY_MODE', () => {}, { DEPLOY_MODE: 'ftp' }, /DEPLOY_MODE='ftp': use host .* or stack/],
    ['stack mode without CDK_PROJECT_DIR', () => {}, { DEPLOY_MODE: 'stack' }, /DEPLOY_MODE=stack needs CDK_PROJECT_DIR/],
    ['no jar (build did not run)', () => {}, {}, /no jar in .*\/build\/libs\/: did 'build' run\?/],
    ['two runnable jars', (workspace) => {
      mkdirSync(join(workspace, 'build', 'libs'), { recursive: true });
      writeFileSync(join(workspace, 'build', 'libs', 'a.jar'), 'x');
      writeFileSync(join(workspace, 'build', 'libs', 'b.jar'), 'x');
    }, {}, /several jars in build\/libs\/ .*: set APP_JAR/],
    ['a version bluegreen would refuse', (workspace) => {
      mkdirSync(join(workspace, 'build', 'libs'), { recursive: true });
      writeFileSync(join(workspace, 'build', 'libs', 'a.jar'), 'x');
    }, { APP_VERSION: 'v 1; rm' }, /version 'v 1; rm' is not one bluegreen accepts/],
  ])('fails with exit 2 and says what to do on %s, before touching the host', (_case, prepare, env, message) => {
    const { workspace } = appCheckout();
    prepare(workspace);
    const before = host.history().length;
    const result = pipeline('deploy', workspace, env);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(host.history()).toHaveLength(before);
  });

  test('fails with exit 2 and names the Gradle wrapper when the repository has none', () => {
    const workspace = mkdtempSync(join(scratch, 'no-wrapper-'));
    const result = pipeline('build', workspace);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no executable ./gradlew');
  });
});
