/**
 * The secrets' path from Secrets Manager to Jenkins: straight into root-only files, handed to
 * Jenkins by systemd, read by JCasC by name; never a value in the output, the template or a script.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { projectPath } from '../../lib/paths.js';
import { resourceById, synthesize } from '../constructs/synth.js';
import {
  ADMIN_SECRET_ARN,
  CONFIGURE_JENKINS,
  httpsJob,
  PIPELINE,
  render,
  scratch,
  settings,
  settingsFile,
  withConfigureJenkins,
} from './support.js';

describe('secrets', () => {
  const canary = `canary-${randomBytes(12).toString('hex')}`;

  /** A stand-in for the AWS CLI that answers get-secret-value with `value` (or fails). */
  function awsAnswering(value: string | undefined): string {
    const bin = mkdtempSync(join(scratch, 'bin-'));
    const body =
      value === undefined
        ? 'printf "An error occurred (AccessDeniedException) when calling the GetSecretValue operation\\n" >&2; exit 254'
        : `[[ "$1 $2" == "secretsmanager get-secret-value" ]] || exit 64; printf '%s\\n' ${JSON.stringify(value)}`;
    writeFileSync(join(bin, 'aws'), `#!/bin/bash\n${body}\n`);
    chmodSync(join(bin, 'aws'), 0o755);
    return bin;
  }

  test('a secret goes from the AWS CLI straight into a 0600 file, and never into the output', () => {
    // GIVEN
    const target = join(mkdtempSync(join(scratch, 'secrets-')), 'adminPassword');
    const bin = awsAnswering(canary);

    // WHEN
    const result = withConfigureJenkins(`fetch_secret ${ADMIN_SECRET_ARN} ${JSON.stringify(target)}`, {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
    });

    // THEN
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(target, 'utf8').trim()).toBe(canary);
    expect(statSync(target).mode & 0o777).toBe(0o600);
    expect(result.stdout + result.stderr).not.toContain(canary);
  });

  test.each([
    ['the CLI fails', undefined, /could not read secret '.*HostJenkinsAdminPassword-AbCdEf' from Secrets Manager/],
    ['the secret holds JSON', `{"token":"${canary}"}`, /is empty or holds JSON; store the value itself/],
    ['the secret is empty', '', /is empty or holds JSON/],
  ])('when %s, it fails naming the secret, not its value, and leaves no file', (_case, value, message) => {
    const dir = mkdtempSync(join(scratch, 'secrets-'));
    const result = withConfigureJenkins(`fetch_secret ${ADMIN_SECRET_ARN} ${JSON.stringify(join(dir, 'adminPassword'))}`, {
      ...process.env,
      PATH: `${awsAnswering(value)}:${process.env.PATH}`,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(message);
    expect(result.stdout + result.stderr).not.toContain(canary);
    expect(spawnSync('ls', ['-A', dir], { encoding: 'utf8' }).stdout).toBe('');
  });

  test("systemd hands Jenkins the root-only files as credentials, JCasC reads them through SECRETS, the setup wizard is off", () => {
    const withToken = withConfigureJenkins(
      `read_settings ${JSON.stringify(settingsFile(settings({ githubTokenSecret: 'ci/github-token', ...httpsJob })))}; service_drop_in`,
    );
    expect(withToken.code, withToken.stderr).toBe(0);
    const lines = withToken.stdout.split('\n');
    expect(lines).toContain('[Service]');
    expect(lines).toContain('Environment="SECRETS=%d"');
    expect(lines).toContain('Environment="CASC_JENKINS_CONFIG=/etc/bluegreen-jenkins/jenkins.yaml"');
    expect(lines).toContain('Environment="JENKINS_PORT=8080"');
    expect(lines).toContainEqual(expect.stringMatching(/^Environment="JAVA_OPTS=.*-Djenkins\.install\.runSetupWizard=false.*"$/));
    expect(lines).toContain('LoadCredential=adminPassword:/etc/bluegreen-jenkins/secrets/adminPassword');
    expect(lines).toContain('LoadCredential=githubToken:/etc/bluegreen-jenkins/secrets/githubToken');

    const withoutToken = withConfigureJenkins(`read_settings ${JSON.stringify(settingsFile(settings()))}; service_drop_in`);
    expect(withoutToken.stdout).not.toContain('githubToken');
  });

  test('the rendered YAML, the template, the scripts and the user data hold references to secrets, never values', () => {
    // GIVEN every text that reaches the host
    const { template } = synthesize({ appRepositoryUrl: 'https://github.com/acme/shop.git', githubTokenSecret: 'ci/github-token' });
    const cloudFormation = JSON.stringify(template.toJSON());
    const rendered = render(settings({ githubTokenSecret: 'ci/github-token', ...httpsJob })).stdout;

    // THEN the stack lets Secrets Manager generate the password: the template holds no value
    const secret = resourceById(template, 'AWS::SecretsManager::Secret', 'HostJenkinsAdminPassword');
    expect(secret.properties.SecretString).toBeUndefined();
    expect(secret.properties.GenerateSecretString).toEqual({ PasswordLength: 32, ExcludePunctuation: true });
    // AND JCasC reads the values at Jenkins' start, by name
    expect([...new Set(rendered.match(/\$\{[A-Za-z]+\}/g))].sort()).toEqual(['${adminPassword}', '${githubToken}']);
    // AND nothing runs with shell tracing, which would print the values it handles
    for (const file of [CONFIGURE_JENKINS, PIPELINE, projectPath('assets', 'userdata', 'bootstrap.sh')]) {
      expect(readFileSync(file, 'utf8')).not.toMatch(/set -[a-wyz]*x|xtrace/);
    }
    expect(cloudFormation).not.toMatch(/initialAdminPassword|"SecretString"/);
  });
});
