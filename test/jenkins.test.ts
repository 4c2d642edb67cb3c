/**
 * Jenkins on the host, as far as it runs here: the JCasC configuration that configure-jenkins
 * renders from the stack's settings, the plugin list, the sudoers rule, the secrets' path from
 * Secrets Manager to Jenkins, and the Jenkinsfile's shell steps (bluegreen-pipeline) deploying
 * to a real local host (real Nginx, real JVMs, the real engine).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { HOST_PATHS } from '../lib/contract.js';
import { JENKINS_ADMIN_USER, JENKINS_POLL_MINUTES, JENKINS_SETTINGS_KEYS, JENKINS_TOOLS_DIR } from '../lib/constructs/bluegreen-host.js';
import { projectPath } from '../lib/paths.js';
import { renderValue, resourceById, synthesize } from './constructs/synth.js';
import { BLUEGREEN, LocalHost } from './support/host.js';

const JENKINS_DIR = projectPath('assets', 'jenkins');
const CONFIGURE_JENKINS = join(JENKINS_DIR, 'configure-jenkins');
const PIPELINE = join(JENKINS_DIR, 'bluegreen-pipeline');
const SUDOERS = join(JENKINS_DIR, 'sudoers');
const SAMPLE_APP_BUILD = projectPath('assets', 'sample-app', 'build');
const PORTS = { nginx: 18610, blue: 18611, green: 18612 };

const scratch = mkdtempSync(join(tmpdir(), 'bluegreen-jenkins-'));
let scratchFiles = 0;

function scratchFile(name: string, content: string): string {
  const file = join(scratch, `${scratchFiles++}-${name}`);
  writeFileSync(file, content);
  return file;
}

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', ...options });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs `snippet` in bash after sourcing configure-jenkins (which then runs nothing by itself). */
function withConfigureJenkins(snippet: string, env: NodeJS.ProcessEnv = process.env) {
  return run('bash', ['-c', `set -Eeuo pipefail; source ${JSON.stringify(CONFIGURE_JENKINS)}; ${snippet}`], { env });
}

type Settings = Record<(typeof JENKINS_SETTINGS_KEYS)[number], string>;

const ADMIN_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:HostJenkinsAdminPassword-AbCdEf';

/** Settings as the stack writes them; the default is a stack without job or token. */
function settings(overrides: Partial<Settings> = {}): Settings {
  return {
    bundleUri: 's3://cdk-hnb659fds-assets-111111111111-eu-west-1/0123.zip',
    adminUser: JENKINS_ADMIN_USER,
    adminPasswordSecret: ADMIN_SECRET_ARN,
    githubTokenSecret: '',
    jobName: '',
    repositoryUrl: '',
    repositoryBranch: '',
    jenkinsPort: '8080',
    jenkinsReachedThrough: 'port-forward',
    ...overrides,
  };
}

const httpsJob = { jobName: 'shop', repositoryUrl: 'https://github.com/acme/shop.git', repositoryBranch: 'main' };
const sshJob = { jobName: 'shop', repositoryUrl: 'git@github.com:acme/shop.git', repositoryBranch: 'release/1.x' };

function settingsFile(values: Settings): string {
  return scratchFile('settings', JENKINS_SETTINGS_KEYS.map((key) => `${key}=${values[key]}`).join('\n'));
}

function render(values: Settings, jenkinsUrl = 'http://localhost:8080/') {
  return run(CONFIGURE_JENKINS, ['render', settingsFile(values), jenkinsUrl]);
}

/** The rendered JCasC YAML, parsed. */
function casc(values: Settings, jenkinsUrl?: string): any {
  const result = render(values, jenkinsUrl);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return parse(result.stdout);
}

/** The Job DSL script of the one job. */
function jobScript(configuration: any): string {
  expect(configuration.jobs).toHaveLength(1);
  return configuration.jobs[0].script as string;
}

/** Whether every bracket closes and every single-quoted string ends: a cheap guard on spliced values. */
function balanced(groovy: string): boolean {
  const code = groovy.replace(/^\s*\/\/.*$/gm, '');
  if ((code.match(/'/g) ?? []).length % 2 !== 0) return false;
  const withoutStrings = code.replace(/'[^'\n]*'/g, "''");
  const closing: Record<string, string> = { ')': '(', '}': '{', ']': '[' };
  const stack: string[] = [];
  for (const char of withoutStrings) {
    if ('({['.includes(char)) stack.push(char);
    else if (char in closing && stack.pop() !== closing[char]) return false;
  }
  return stack.length === 0;
}

describe('the JCasC configuration configure-jenkins renders', () => {
  test('from the settings the stack synthesizes: valid YAML with the job, the credentials and the webhook', () => {
    // GIVEN the settings parameter of a stack with a job, a token and Jenkins reachable by network
    const { template } = synthesize({
      appRepositoryUrl: 'https://github.com/acme/shop.git',
      githubTokenSecret: 'ci/github-token',
      jenkinsAllowedCidrs: '203.0.113.0/24',
    });
    const parameter = renderValue(resourceById(template, 'AWS::SSM::Parameter', 'HostJenkinsSettings').properties.Value);
    // CloudFormation resolves references at deploy time; here they become what AWS would put there.
    const deployed = parameter
      .replaceAll('<AWS::Partition>', 'aws')
      .replaceAll('<AWS::Region>', 'eu-west-1')
      .replaceAll('<AWS::AccountId>', '111111111111')
      .replace(/<HostJenkinsAdminPassword[0-9A-F]+>/, ADMIN_SECRET_ARN);
    expect(deployed).not.toMatch(/[<>]/);

    // WHEN
    const result = run(CONFIGURE_JENKINS, ['render', scratchFile('settings', deployed), 'http://ec2-203-0-113-7.compute-1.amazonaws.com:8080/']);

    // THEN
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const configuration = parse(result.stdout);
    expect(Object.keys(configuration).sort()).toEqual(['credentials', 'jenkins', 'jobs', 'unclassified']);
    expect(configuration.unclassified.gitHubPluginConfig).toEqual({
      hookUrl: 'http://ec2-203-0-113-7.compute-1.amazonaws.com:8080/github-webhook/',
      configs: [{ name: 'GitHub', apiUrl: 'https://api.github.com', credentialsId: 'github-token', manageHooks: true }],
    });
    const script = jobScript(configuration);
    expect(script).toContain("pipelineJob('shop')");
    expect(script).toContain("url('https://github.com/acme/shop.git')");
    expect(script).toContain("branch('*/main')");
  });

  test('always: a local admin user with the password from the secret file, no sign-up, nothing for anonymous users', () => {
    const configuration = casc(settings());
    expect(configuration.jenkins.securityRealm).toEqual({
      local: { allowsSignup: false, users: [{ id: 'admin', name: 'Administrator', password: '${adminPassword}' }] },
    });
    expect(configuration.jenkins.authorizationStrategy).toEqual({ loggedInUsersCanDoAnything: { allowAnonymousRead: false } });
    expect(configuration.jenkins.numExecutors).toBe(1);
    expect(configuration.jenkins.systemMessage).toContain('/etc/bluegreen-jenkins/jenkins.yaml');
  });

  test('without an app repository: no job, and without a token: no credentials and no GitHub server', () => {
    const configuration = casc(settings());
    expect(Object.keys(configuration).sort()).toEqual(['jenkins', 'unclassified']);
    expect(configuration.unclassified).toEqual({
      location: { url: 'http://localhost:8080/' },
      gitHubPluginConfig: { hookUrl: 'http://localhost:8080/github-webhook/' },
    });
  });

  test('with a token: a secret-text credential for the GitHub API and a username/password one for git, both from ${githubToken}', () => {
    const configuration = casc(settings({ githubTokenSecret: 'ci/github-token', ...httpsJob }));
    expect(configuration.credentials.system.domainCredentials).toEqual([
      {
        credentials: [
          { string: expect.objectContaining({ scope: 'GLOBAL', id: 'github-token', secret: '${githubToken}' }) },
          {
            usernamePassword: expect.objectContaining({
              scope: 'GLOBAL',
              id: 'github-checkout',
              username: 'x-access-token',
              password: '${githubToken}',
            }),
          },
        ],
      },
    ]);
  });

  test.each([
    ['https with a token, reachable by network', { githubTokenSecret: 'ci/github-token', ...httpsJob, jenkinsReachedThrough: 'network' }, { checkoutCredentials: true, manageHooks: true, polls: false }],
    ['https with a token, port-forward only', { githubTokenSecret: 'ci/github-token', ...httpsJob }, { checkoutCredentials: true, manageHooks: false, polls: true }],
    ['ssh with a token, reachable by network', { githubTokenSecret: 'ci/github-token', ...sshJob, jenkinsReachedThrough: 'network' }, { checkoutCredentials: false, manageHooks: true, polls: false }],
    ['https without a token, reachable by network', { ...httpsJob, jenkinsReachedThrough: 'network' }, { checkoutCredentials: false, manageHooks: undefined, polls: false }],
    ['ssh without a token, port-forward only', { ...sshJob }, { checkoutCredentials: false, manageHooks: undefined, polls: true }],
  ] as const)('the pipeline job for %s', (_case, overrides, expected) => {
    // WHEN
    const configuration = casc(settings(overrides));

    // THEN the job builds the repository's Jenkinsfile from the branch, one build at a time, on each push
    const script = jobScript(configuration);
    expect(balanced(script)).toBe(true);
    expect(script).toContain(`pipelineJob('${overrides.jobName}')`);
    expect(script).toContain(`url('${overrides.repositoryUrl}')`);
    expect(script).toContain(`branch('*/${overrides.repositoryBranch}')`);
    expect(script).toContain("scriptPath('Jenkinsfile')");
    expect(script).toContain('disableConcurrentBuilds()');
    expect(script).toContain('githubPush()');
    // AND it checks out with the token only over https, where git can use it
    expect(script.includes("credentials('github-checkout')")).toBe(expected.checkoutCredentials);
    // AND GitHub registers the webhook itself only when it can reach Jenkins; else the job polls
    expect(configuration.unclassified.gitHubPluginConfig.configs?.[0]?.manageHooks).toBe(expected.manageHooks);
    expect(script.includes(`scmpoll_spec('H/${JENKINS_POLL_MINUTES} * * * *')`)).toBe(expected.polls);
    expect(script).not.toContain('@@');
    expect(script).not.toContain('# @');
  });

  test('refuses any spliced value that could leave its quotes in the YAML or the Job DSL script', () => {
    for (const bad of ["https://github.com/acme/x'); evil('", 'https://github.com/acme/$(id)', 'https://github.com/acme/x y', 'a\\b', 'x@@JOB_NAME@@']) {
      const result = render(settings({ ...httpsJob, repositoryUrl: bad }));
      expect(result.code, bad).toBe(1);
      expect(result.stdout, bad).toBe('');
      expect(result.stderr, bad).toContain('setting repositoryUrl holds a character that is not allowed');
    }
  });

  test.each([
    ['an unknown key', 'bundleUri=s3://b/k.zip\nsurprise=1\n', /unknown key 'surprise'/],
    ['a line that is not KEY=VALUE', 'adminUser admin\n', /is not KEY=VALUE/],
    ['no admin password secret', JENKINS_SETTINGS_KEYS.map((key) => `${key}=${key === 'adminPasswordSecret' ? '' : settings(httpsJob)[key]}`).join('\n'), /setting adminPasswordSecret is empty/],
    ['a job without a branch', JENKINS_SETTINGS_KEYS.map((key) => `${key}=${key === 'repositoryBranch' ? '' : settings(httpsJob)[key]}`).join('\n'), /jobName needs repositoryUrl and repositoryBranch/],
  ])('refuses settings with %s', (_case, text, message) => {
    const result = run(CONFIGURE_JENKINS, ['render', scratchFile('settings', text), 'http://localhost:8080/']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(message);
  });

  test('refuses a template whose blocks do not balance or that names an unknown placeholder', () => {
    const cases: Array<[string, RegExp]> = [
      ['a: 1\n# @if JOB_NAME\nb: 2\n', /is not closed/],
      ['a: 1\n# @end\n', /'# @end' without '# @if'/],
      ['a: @@NOT_A_SETTING@@\n', /unknown placeholder @@NOT_A_SETTING@@/],
      ['# @if NOT_A_SETTING\n# @end\n', /unknown condition NOT_A_SETTING/],
    ];
    for (const [template, message] of cases) {
      const file = scratchFile('template.yaml', template);
      const result = withConfigureJenkins(`declare -A known=([JOB_NAME]=x); render_template ${JSON.stringify(file)} known`);
      expect(result.code, template).toBe(1);
      expect(result.stderr).toMatch(message);
    }
  });

  test('the settings keys are the same on both sides: the stack writes what configure-jenkins reads', () => {
    const script = readFileSync(CONFIGURE_JENKINS, 'utf8');
    const declared = /readonly SETTING_KEYS=\(([^)]*)\)/.exec(script)![1]!.split(/\s+/).filter(Boolean);
    expect(declared).toEqual([...JENKINS_SETTINGS_KEYS]);
  });
});

describe('plugins', () => {
  const plugins = readFileSync(join(JENKINS_DIR, 'plugins.txt'), 'utf8')
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean);

  test('the list is not empty, one plugin id per line, without duplicates', () => {
    expect(plugins.length).toBeGreaterThan(0);
    for (const plugin of plugins) expect(plugin).toMatch(/^[a-z0-9][a-z0-9-]*$/);
    expect(new Set(plugins).size).toBe(plugins.length);
  });

  test('holds every plugin the fullest configuration and the Jenkinsfile use', () => {
    // GIVEN the configuration with every optional part present
    const configuration = casc(settings({ githubTokenSecret: 'ci/github-token', ...httpsJob, jenkinsReachedThrough: 'network' }));
    const script = jobScript(configuration);
    const jenkinsfile = readFileSync(join(JENKINS_DIR, 'Jenkinsfile'), 'utf8');

    // THEN each feature in use has its plugin in the list
    const needs: Array<[boolean, string]> = [
      [true, 'configuration-as-code'],
      [configuration.jobs !== undefined, 'job-dsl'],
      [script.includes('pipelineJob(') && script.includes('cpsScm'), 'workflow-aggregator'],
      [script.includes('git {'), 'git'],
      [configuration.unclassified.gitHubPluginConfig !== undefined && script.includes('githubPush()'), 'github'],
      [configuration.credentials.system.domainCredentials[0].credentials.some((c: object) => 'usernamePassword' in c), 'credentials'],
      [configuration.credentials.system.domainCredentials[0].credentials.some((c: object) => 'string' in c), 'plain-credentials'],
      [/\bjunit\b/.test(jenkinsfile), 'junit'],
      [/\bpipeline \{/.test(jenkinsfile), 'workflow-aggregator'],
    ];
    for (const [used, plugin] of needs) {
      expect(used, plugin).toBe(true);
      expect(plugins).toContain(plugin);
    }
    expect(plugins).toContain('credentials-binding');
  });

  test('are installed with the pinned plugin installation manager, against the installed Jenkins war', () => {
    const script = readFileSync(CONFIGURE_JENKINS, 'utf8');
    expect(script).toMatch(/readonly PLUGIN_MANAGER_VERSION=\d+\.\d+\.\d+\n/);
    expect(script).toContain('--war "$JENKINS_WAR" --plugin-download-directory "$JENKINS_HOME_DIR/plugins"');
    expect(script).toContain('--plugin-file "$PLUGIN_LIST"');
  });
});

describe('the sudoers rule', () => {
  const rule = readFileSync(SUDOERS, 'utf8');
  const lines = rule.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));

  test('passes visudo -c -f', () => {
    const result = run('visudo', ['-c', '-f', SUDOERS]);
    expect(result.stdout + result.stderr).toContain('parsed OK');
    expect(result.code).toBe(0);
  });

  test('visudo does reject a broken copy (the check above is real)', () => {
    const broken = scratchFile('sudoers', rule.replace('NOPASSWD:', 'NOPASSWD'));
    expect(run('visudo', ['-c', '-f', broken]).code).not.toBe(0);
  });

  test('lets jenkins run, without a password, exactly the engine with deploy of a workspace jar, rollback, status and history', () => {
    const alias = lines.join('\n').replace(/\\\n\s*/g, '');
    const commands = /Cmnd_Alias BLUEGREEN_FROM_JENKINS = (.*)/.exec(alias)![1]!.split(/,\s*/);
    expect(commands).toEqual([
      `${HOST_PATHS.command} deploy /var/lib/jenkins/workspace/*`,
      `${HOST_PATHS.command} rollback`,
      `${HOST_PATHS.command} status`,
      `${HOST_PATHS.command} history`,
    ]);
    const userRules = lines.filter((line) => !/^(Cmnd_Alias|Defaults|\s)/.test(line));
    expect(userRules).toEqual(['jenkins ALL=(root) NOPASSWD: BLUEGREEN_FROM_JENKINS']);
  });

  test('keeps the environment from reaching root: env_reset and no SETENV, as the engine reads BLUEGREEN_* variables as configuration', () => {
    expect(lines).toContain('Defaults!BLUEGREEN_FROM_JENKINS env_reset, !setenv, !requiretty');
    expect(rule).not.toMatch(/SETENV|env_keep|ALL\s*$/m);
  });

  test.skipIf(process.getuid?.() !== 0)('configure-jenkins installs it with mode 0440 after visudo, and installs nothing that fails visudo', () => {
    // GIVEN
    const target = join(mkdtempSync(join(scratch, 'sudoers.d-')), 'bluegreen-jenkins');

    // WHEN
    const good = withConfigureJenkins(`install_sudoers_rule ${JSON.stringify(SUDOERS)} ${JSON.stringify(target)}`);
    const brokenTarget = `${target}-broken`;
    const broken = withConfigureJenkins(
      `install_sudoers_rule ${JSON.stringify(scratchFile('sudoers', 'jenkins ALL=(root NOPASSWD: /bin/true\n'))} ${JSON.stringify(brokenTarget)}`,
    );

    // THEN
    expect(good.code, good.stderr).toBe(0);
    expect(statSync(target).mode & 0o7777).toBe(0o440);
    expect(readFileSync(target, 'utf8')).toBe(rule);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain("does not pass 'visudo -c'; no sudo rule was installed");
    expect(existsSync(brokenTarget)).toBe(false);
  });
});

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

describe('the Jenkinsfile', () => {
  const jenkinsfile = readFileSync(join(JENKINS_DIR, 'Jenkinsfile'), 'utf8');

  test('builds and tests, then deploys the way DEPLOY_MODE says (host by default), through bluegreen-pipeline on the host', () => {
    expect(jenkinsfile).toContain("choice(name: 'DEPLOY_MODE', choices: ['host', 'stack']");
    expect(jenkinsfile).toContain(`BLUEGREEN_PIPELINE = '${JENKINS_TOOLS_DIR}/bluegreen-pipeline'`);
    const steps = [...jenkinsfile.matchAll(/sh '([^']*)'/g)].map((match) => match[1]);
    expect(steps).toEqual(['"$BLUEGREEN_PIPELINE" build', '"$BLUEGREEN_PIPELINE" deploy']);
    expect(jenkinsfile).toContain('disableConcurrentBuilds()');
    expect(readFileSync(PIPELINE, 'utf8')).toContain(`readonly DEFAULT_BLUEGREEN_COMMAND='sudo -n ${HOST_PATHS.command}'`);
    expect(balanced(jenkinsfile.replace(/"[^"\n]*"/g, '""'))).toBe(true);
  });
});

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
      expect(deploy.stderr).toContain(`deploying ${join(workspace, 'build', 'libs', 'app.jar')} as ${version} on this host`);
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
