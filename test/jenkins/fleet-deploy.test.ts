/**
 * Jenkins on the host, as far as it runs here: the JCasC configuration that configure-jenkins
 * renders from the stack's settings, the plugin list, the sudoers rule, the secrets' path from
 * Secrets Manager to Jenkins, and the Jenkinsfile's shell steps (bluegreen-pipeline) deploying
 * to a real local host (real Nginx, real JVMs, the real engine), and to a fleet through a
 * stand-in for the AWS CLI that answers as SSM and S3 would.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { FLEET_RELEASE_KEYS, FLEET_RELEASE_UNSET, FLEET_TAG_KEY, HOST_PATHS, MAX_CONCURRENCY_PATTERN } from '../../lib/contract.js';
import {
  JENKINS_ADMIN_USER,
  JENKINS_FLEET_SETTINGS_KEYS,
  JENKINS_POLL_MINUTES,
  JENKINS_SETTINGS_KEYS,
  JENKINS_TOOLS_DIR,
} from '../../lib/constructs/bluegreen-host.js';
import { projectPath } from '../../lib/paths.js';
import { renderValue, resourceById, synthesize } from '../constructs/synth.js';
import { BLUEGREEN, LocalHost } from '../support/host.js';

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

type Settings = Record<(typeof JENKINS_SETTINGS_KEYS)[number], string> &
  Partial<Record<(typeof JENKINS_FLEET_SETTINGS_KEYS)[number], string>>;

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

/** The fleet's Jenkins: on its own instance, deploying through the SSM document. */
const fleetSettings: Record<(typeof JENKINS_FLEET_SETTINGS_KEYS)[number], string> = {
  deployMode: 'fleet',
  region: 'eu-west-1',
  documentName: 'Ec2BlueGreen-DeployDocument-AbC123',
  fleetTarget: `tag:${FLEET_TAG_KEY}=Ec2BlueGreen`,
  maxConcurrency: '1',
  releaseParameter: '/ec2-bluegreen/fleet-release',
  uploadLocation: 's3://cdk-hnb659fds-assets-111111111111-eu-west-1/cli-releases/',
  outputLogGroup: 'Ec2BlueGreen-DeployOutput',
};

const httpsJob = { jobName: 'shop', repositoryUrl: 'https://github.com/acme/shop.git', repositoryBranch: 'main' };
const sshJob = { jobName: 'shop', repositoryUrl: 'git@github.com:acme/shop.git', repositoryBranch: 'release/1.x' };

/** The settings file as the stack writes it: the fleet's keys only when there are any (as on the fleet's Jenkins). */
function settingsFile(values: Settings): string {
  const keys = [...JENKINS_SETTINGS_KEYS, ...JENKINS_FLEET_SETTINGS_KEYS.filter((key) => values[key] !== undefined)];
  return scratchFile('settings', keys.map((key) => `${key}=${values[key]}`).join('\n'));
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
    const fleetDeclared = /readonly FLEET_SETTING_KEYS=\(([^)]*)\)/.exec(script)![1]!.split(/\s+/).filter(Boolean);
    expect(fleetDeclared).toEqual([...JENKINS_FLEET_SETTINGS_KEYS]);
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

  test('builds and tests, then deploys the way DEPLOY_MODE says (as configured by default), through bluegreen-pipeline on the host', () => {
    expect(jenkinsfile).toContain("choice(name: 'DEPLOY_MODE', choices: ['configured', 'host', 'fleet', 'stack']");
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

/** Jenkins' global environment variables, as the rendered JCasC sets them. */
function globalEnv(configuration: any): Record<string, string> {
  const properties = configuration.jenkins.globalNodeProperties as Array<{ envVars: { env: Array<{ key: string; value: string }> } }>;
  expect(properties).toHaveLength(1);
  return Object.fromEntries(properties[0]!.envVars.env.map(({ key, value }) => [key, value]));
}

describe('the deploy mode in the settings: host on the single host, fleet on the fleet’s own Jenkins', () => {
  test('host mode: the pipeline learns only that it deploys on this host', () => {
    expect(globalEnv(casc(settings({ ...httpsJob })))).toEqual({ BLUEGREEN_DEPLOY_MODE: 'host' });
  });

  test('fleet mode: every fleet setting reaches the pipeline as a Jenkins global environment variable', () => {
    expect(globalEnv(casc(settings({ ...httpsJob, ...fleetSettings })))).toEqual({
      BLUEGREEN_DEPLOY_MODE: 'fleet',
      FLEET_REGION: 'eu-west-1',
      FLEET_DOCUMENT: fleetSettings.documentName,
      FLEET_TARGET: `tag:${FLEET_TAG_KEY}=Ec2BlueGreen`,
      FLEET_MAX_CONCURRENCY: '1',
      FLEET_RELEASE_PARAMETER: fleetSettings.releaseParameter,
      FLEET_UPLOAD_LOCATION: fleetSettings.uploadLocation,
      FLEET_OUTPUT_LOG_GROUP: fleetSettings.outputLogGroup,
    });
    const withoutLogGroup = globalEnv(casc(settings({ ...fleetSettings, outputLogGroup: '', maxConcurrency: '25%' })));
    expect(withoutLogGroup).not.toHaveProperty('FLEET_OUTPUT_LOG_GROUP');
    expect(withoutLogGroup.FLEET_MAX_CONCURRENCY).toBe('25%');
  });

  test.each<[string, Partial<Settings>, RegExp]>([
    ['an unknown deploy mode', { deployMode: 'ssh' }, /setting deployMode must be 'host' or 'fleet', not 'ssh'/],
    ['fleet mode without a document', { ...fleetSettings, documentName: '' }, /setting documentName is empty, and deployMode=fleet needs it/],
    ['fleet mode without a release parameter', { ...fleetSettings, releaseParameter: '' }, /setting releaseParameter is empty/],
    ['a fleet target that is not tag:KEY=VALUE', { ...fleetSettings, fleetTarget: 'i-0123456789abcdef0' }, /setting fleetTarget must be tag:KEY=VALUE/],
    ['a max concurrency of 0', { ...fleetSettings, maxConcurrency: '0' }, /setting maxConcurrency must be a number of hosts/],
    ['a max concurrency over 100%', { ...fleetSettings, maxConcurrency: '101%' }, /setting maxConcurrency must be a number of hosts/],
    ['an upload location that is not in S3', { ...fleetSettings, uploadLocation: 'https://example.com/jars/' }, /setting uploadLocation must be s3:\/\/BUCKET\/PREFIX\//],
  ])('refuses settings with %s', (_case, overrides, message) => {
    const result = render(settings(overrides));
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
  });

  test('the scripts check MaxConcurrency with the contract’s pattern', () => {
    for (const file of [CONFIGURE_JENKINS, PIPELINE]) {
      expect(readFileSync(file, 'utf8')).toContain(`readonly MAX_CONCURRENCY_PATTERN='${MAX_CONCURRENCY_PATTERN}'`);
    }
  });

  test.each([
    ['host', true],
    ['fleet', false],
  ])('install in %s mode installs the sudoers rule: %s (a fleet’s Jenkins has no engine to run as root)', (mode, installsRule) => {
    // GIVEN configure-jenkins with every step that touches the machine replaced by a recorder
    const values = settings(mode === 'fleet' ? fleetSettings : {});
    const stubs = ['install', 'install_sudoers_rule', 'install_plugins', 'fetch_secrets', 'write_casc', 'write_service_drop_in']
      .map((step) => `${step}() { printf '%s\\n' ${step}; }`)
      .join('; ');

    // WHEN
    const result = withConfigureJenkins(`${stubs}; read_settings ${JSON.stringify(settingsFile(values))}; cmd_install`);

    // THEN
    expect(result.code, result.stderr).toBe(0);
    const steps = result.stdout.trim().split('\n');
    expect(steps).toEqual(['install', ...(installsRule ? ['install_sudoers_rule'] : []), 'install_plugins', 'fetch_secrets', 'write_casc', 'write_service_drop_in']);
    if (!installsRule) expect(result.stderr).toContain('deployMode=fleet: no sudoers rule');
  });
});

/**
 * A stand-in for the AWS CLI: records each call (argv as a JSON line in FAKE_AWS_LOG) and
 * answers as the AWS CLI does with `--output json`, from the scenario in FAKE_AWS_SCENARIO.
 * `send-command` by tag starts the roll-out (commandId), by instance ids the catch-up
 * (catchUpCommandId). Each `list-commands` moves that command one round on;
 * `list-command-invocations` shows that round. `describe-instance-information` answers the
 * fleet's hosts in one list, as the CLI does after following NextToken itself.
 */
const FAKE_AWS = `#!/usr/bin/env node
const fs = require('node:fs');
const args = process.argv.slice(2);
fs.appendFileSync(process.env.FAKE_AWS_LOG, JSON.stringify(args) + '\\n');
const scenario = JSON.parse(fs.readFileSync(process.env.FAKE_AWS_SCENARIO, 'utf8'));
const fail = (message, code) => { process.stderr.write(message + '\\n'); process.exit(code); };
const globals = {};
let rest = args;
while (rest.length > 0 && rest[0].startsWith('--')) { globals[rest[0].slice(2)] = rest[1]; rest = rest.slice(2); }
if (globals.output !== 'json') fail('aws (stand-in): answers JSON only; call it with --output json', 2);
if (globals.region !== scenario.region) fail('aws (stand-in): expected --region ' + scenario.region, 2);
const [service, operation, ...options] = rest;
const option = (name) => { const at = options.indexOf(name); return at < 0 ? undefined : options[at + 1]; };
const answer = (value) => process.stdout.write(JSON.stringify(value, null, 4) + '\\n');
const values = (name) => { const at = options.indexOf(name); if (at < 0) return []; const end = options.findIndex((o, i) => i > at && o.startsWith('--')); return options.slice(at + 1, end < 0 ? undefined : end); };
const commandId = () => {
  const id = option('--command-id');
  if (scenario.commands[id] === undefined) fail('An error occurred (InvalidCommandId) when calling the operation: ', 254);
  return id;
};
const roundFile = (id) => process.env.FAKE_AWS_SCENARIO + '.' + id + '.round';
const round = (id) => (fs.existsSync(roundFile(id)) ? Number(fs.readFileSync(roundFile(id), 'utf8')) : 0);
const current = (id) => scenario.commands[id].rounds[Math.max(round(id) - 1, 0)];
switch (service + ' ' + operation) {
  case 's3 cp': {
    const positional = [];
    for (let at = 0; at < options.length; at++) {
      if (options[at] === '--content-type') at++;
      else if (!options[at].startsWith('--')) positional.push(options[at]);
    }
    fs.copyFileSync(positional[0], scenario.uploadedTo);
    break;
  }
  case 'ssm send-command': {
    const instanceIds = values('--instance-ids');
    if (options.includes('--targets') === instanceIds.length > 0) fail('An error occurred (ValidationException) when calling the SendCommand operation: name either Targets or InstanceIds', 254);
    if (scenario.sendFails) fail('An error occurred (AccessDeniedException) when calling the SendCommand operation: not authorized', 254);
    const id = instanceIds.length > 0 ? scenario.catchUpCommandId : scenario.commandId;
    if (scenario.commands[id] === undefined) fail('aws (stand-in): the scenario has no command to send to ' + instanceIds.join(' '), 2);
    answer({ Command: { CommandId: id, DocumentName: option('--document-name'), DocumentVersion: option('--document-version'),
      Comment: option('--comment'), Parameters: JSON.parse(option('--parameters')), InstanceIds: instanceIds, Targets: [],
      Status: 'Pending', StatusDetails: 'Pending', MaxConcurrency: option('--max-concurrency') ?? '50', MaxErrors: option('--max-errors') ?? '0',
      TimeoutSeconds: Number(option('--timeout-seconds')), TargetCount: instanceIds.length, CompletedCount: 0, ErrorCount: 0, DeliveryTimedOutCount: 0 } });
    break;
  }
  case 'ssm list-commands': {
    const id = commandId();
    fs.writeFileSync(roundFile(id), String(Math.min(round(id) + 1, scenario.commands[id].rounds.length)));
    const { status, hosts } = current(id);
    const statuses = Object.values(hosts);
    answer({ Commands: [{ CommandId: id, Status: status, StatusDetails: status, TargetCount: statuses.length,
      CompletedCount: statuses.filter((s) => !['Pending', 'InProgress'].includes(s)).length,
      ErrorCount: statuses.filter((s) => s === 'Failed').length }] });
    break;
  }
  case 'ssm list-command-invocations': {
    const id = commandId();
    answer({ CommandInvocations: Object.entries(current(id).hosts).map(([instance, status]) => ({ CommandId: id,
      InstanceId: instance, InstanceName: '', DocumentName: 'doc', DocumentVersion: '$LATEST', Status: status, StatusDetails: status,
      StandardOutputUrl: '', StandardErrorUrl: '', CommandPlugins: [] })) });
    break;
  }
  case 'ssm get-command-invocation': {
    const id = commandId();
    const instance = option('--instance-id');
    answer({ CommandId: id, InstanceId: instance, PluginName: 'deploy', ResponseCode: 0, Status: 'Success',
      StatusDetails: 'Success', StandardOutputContent: '', StandardErrorContent: '', ...(scenario.commands[id].details[instance] ?? {}) });
    break;
  }
  case 'ssm describe-instance-information':
    if (options.includes('--no-paginate') || options.includes('--max-items')) fail('aws (stand-in): that would answer only part of the fleet', 2);
    if (scenario.describeFails) fail('An error occurred (AccessDeniedException) when calling the DescribeInstanceInformation operation: not authorized', 254);
    answer({ InstanceInformationList: option('--filters') !== scenario.fleetFilter ? [] : Object.entries(scenario.fleetHosts).map(([instance, ping]) => ({
      InstanceId: instance, PingStatus: ping, LastPingDateTime: '2026-11-25T10:00:00.000000+00:00', AgentVersion: '3.3.1345.0',
      IsLatestVersion: false, PlatformType: 'Linux', PlatformName: 'Amazon Linux', ResourceType: 'EC2Instance', IPAddress: '10.0.1.5' })) });
    break;
  case 'ssm get-parameter':
    if (option('--name') !== scenario.releaseParameter) fail('An error occurred (ParameterNotFound) when calling the GetParameter operation: ', 254);
    answer({ Parameter: { Name: scenario.releaseParameter, Type: 'String', Value: scenario.currentRecord, Version: 1,
      LastModifiedDate: '2026-11-25T10:00:00.000000+00:00', ARN: 'arn:aws:ssm:eu-west-1:111111111111:parameter' + scenario.releaseParameter, DataType: 'text' } });
    break;
  case 'ssm put-parameter':
    answer({ Version: 2, Tier: 'Standard' });
    break;
  default:
    fail('aws (stand-in): unexpected call: ' + args.join(' '), 2);
}
`;

describe('bluegreen-pipeline deploy to a fleet, against a stand-in AWS CLI', () => {
  const fleetBin = mkdtempSync(join(scratch, 'fleet-bin-'));
  writeFileSync(join(fleetBin, 'aws'), FAKE_AWS);
  chmodSync(join(fleetBin, 'aws'), 0o755);
  const COMMAND_ID = '0b9a3c1e-5d2f-4e6a-9c8b-7f1e2d3c4b5a';
  const CATCH_UP_COMMAND_ID = '7c2d4e6f-8a0b-4c1d-9e2f-3a4b5c6d7e8f';
  const VERSION = '2.7.0';
  const OLD_SHA256 = 'e'.repeat(64);
  const OLD_URI = `${fleetSettings.uploadLocation}${OLD_SHA256}.jar`;

  /** A release record (FLEET_RELEASE_KEYS lines) for `sha256`, with its previous release. */
  function recordOf(sha256: string, version: string, commandId: string, previous: [string, string, string]): string {
    const values: Record<keyof typeof FLEET_RELEASE_KEYS, string> = {
      artifactUri: `${fleetSettings.uploadLocation}${sha256}.jar`,
      sha256,
      version,
      commandId,
      recordedAt: '2026-11-20T09:00:00Z',
      recordedBy: 'cloudformation',
      previousArtifactUri: previous[0],
      previousSha256: previous[1],
      previousVersion: previous[2],
    };
    return (Object.keys(FLEET_RELEASE_KEYS) as Array<keyof typeof FLEET_RELEASE_KEYS>).map((key) => `${FLEET_RELEASE_KEYS[key]}=${values[key]}`).join('\n');
  }

  type Round = [status: string, hosts: Record<string, string>];
  interface Scenario {
    /** The roll-out by tag, round by round. */
    readonly rounds: Round[];
    readonly details?: Record<string, object>;
    readonly sendFails?: boolean;
    /** What the release parameter holds before the deploy. @default FLEET_RELEASE_UNSET */
    readonly currentRecord?: string | ((sha256: string) => string);
    /**
     * The hosts with the fleet's tag once the roll-out ended, and their SSM ping status.
     * @default - the roll-out's hosts, Online: none joined meanwhile
     */
    readonly fleetHosts?: Record<string, string>;
    readonly describeFails?: boolean;
    /** The catch-up by instance ids, if one is sent. */
    readonly catchUp?: { readonly rounds: Round[]; readonly details?: Record<string, object> };
  }

  const asRounds = (rounds: Round[]) => rounds.map(([status, hosts]) => ({ status, hosts }));

  /** A checkout with a built jar; the deploy with Jenkins' global variables from the fleet's JCasC. */
  function deployToFleet(scenario: Scenario, env: Record<string, string> = {}, abortAfterMs?: number) {
    const dir = mkdtempSync(join(scratch, 'fleet-'));
    const workspace = join(dir, 'workspace');
    mkdirSync(join(workspace, 'build', 'libs'), { recursive: true });
    const jar = join(workspace, 'build', 'libs', 'app.jar');
    writeFileSync(jar, `jar ${randomBytes(8).toString('hex')}`);
    const sha256 = createHash('sha256').update(readFileSync(jar)).digest('hex');
    const log = join(dir, 'aws-calls');
    writeFileSync(log, '');
    const scenarioFile = join(dir, 'scenario.json');
    writeFileSync(
      scenarioFile,
      JSON.stringify({
        region: fleetSettings.region,
        commandId: COMMAND_ID,
        catchUpCommandId: CATCH_UP_COMMAND_ID,
        uploadedTo: join(dir, 'uploaded.jar'),
        commands: {
          [COMMAND_ID]: { rounds: asRounds(scenario.rounds), details: scenario.details ?? {} },
          ...(scenario.catchUp === undefined
            ? {}
            : { [CATCH_UP_COMMAND_ID]: { rounds: asRounds(scenario.catchUp.rounds), details: scenario.catchUp.details ?? {} } }),
        },
        sendFails: scenario.sendFails ?? false,
        fleetFilter: `Key=tag:${FLEET_TAG_KEY},Values=Ec2BlueGreen`,
        fleetHosts: scenario.fleetHosts ?? Object.fromEntries(Object.keys(scenario.rounds.at(-1)![1]).map((host) => [host, 'Online'])),
        describeFails: scenario.describeFails ?? false,
        releaseParameter: fleetSettings.releaseParameter,
        currentRecord:
          typeof scenario.currentRecord === 'function' ? scenario.currentRecord(sha256) : (scenario.currentRecord ?? FLEET_RELEASE_UNSET),
      }),
    );
    const jenkinsEnv = globalEnv(casc(settings({ ...httpsJob, ...fleetSettings })));
    // An abort is what Jenkins does to a build's shell step: SIGTERM, then it waits for the exit.
    const [command, args] =
      abortAfterMs === undefined
        ? [PIPELINE, ['deploy']]
        : ['bash', ['-c', `${JSON.stringify(PIPELINE)} deploy & pid=$!; sleep ${abortAfterMs / 1000}; kill -TERM $pid; wait $pid`]];
    const result = run(command, args, {
      cwd: workspace,
      env: {
        ...process.env,
        PATH: `${fleetBin}:${process.env.PATH}`,
        FAKE_AWS_LOG: log,
        FAKE_AWS_SCENARIO: scenarioFile,
        ...jenkinsEnv,
        // What Jenkins sets for a build of the job that a push triggered.
        DEPLOY_MODE: 'configured',
        JOB_NAME: 'shop',
        BUILD_NUMBER: '42',
        APP_VERSION: VERSION,
        FLEET_POLL_SECONDS: '0',
        ...env,
      },
    });
    const calls = readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as string[]);
    const uploaded = existsSync(join(dir, 'uploaded.jar')) ? readFileSync(join(dir, 'uploaded.jar')) : undefined;
    return { ...result, calls, jarPath: jar, jar: readFileSync(jar), sha256, uploaded };
  }

  /** The operation of a call, after the global options (`ssm send-command`). */
  const operationOf = (call: string[]) => call.slice(4, 6).join(' ');
  const optionOf = (call: string[], name: string) => call[call.indexOf(name) + 1];
  /** The values of a list option (`--instance-ids a b`): up to the next option. */
  const valuesOf = (call: string[], name: string) => {
    const rest = call.slice(call.indexOf(name) + 1);
    const end = rest.findIndex((arg) => arg.startsWith('--'));
    return end < 0 ? rest : rest.slice(0, end);
  };
  const callsOf = (calls: string[][], operation: string) => calls.filter((call) => operationOf(call) === operation);
  const recordIn = (calls: string[][]) => optionOf(callsOf(calls, 'ssm put-parameter').at(-1)!, '--value')!.split('\n');
  const hostLines = (stdout: string) => stdout.split('\n').filter((line) => line.startsWith('bluegreen-pipeline: host '));

  const rolling: Round[] = [
    ['InProgress', { 'i-0aaa': 'InProgress', 'i-0bbb': 'Pending', 'i-0ccc': 'Pending' }],
    ['InProgress', { 'i-0aaa': 'InProgress', 'i-0bbb': 'Pending', 'i-0ccc': 'Pending' }],
    ['InProgress', { 'i-0aaa': 'Success', 'i-0bbb': 'InProgress', 'i-0ccc': 'Pending' }],
    ['InProgress', { 'i-0aaa': 'Success', 'i-0bbb': 'Success', 'i-0ccc': 'InProgress' }],
    ['Success', { 'i-0aaa': 'Success', 'i-0bbb': 'Success', 'i-0ccc': 'Success' }],
  ];

  test('uploads the jar by its sha256, sends the document to the fleet tag one host at a time with MaxErrors 0, follows each host, then records the release', () => {
    // WHEN a push-triggered build deploys on the fleet's Jenkins (DEPLOY_MODE=configured), over 2.6.0
    const result = deployToFleet({ rounds: rolling, currentRecord: recordOf(OLD_SHA256, '2.6.0', 'cmd-0', ['', '', '']) });

    // THEN
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const uri = `${fleetSettings.uploadLocation}${result.sha256}.jar`;
    for (const call of result.calls) expect(call.slice(0, 4)).toEqual(['--region', fleetSettings.region, '--output', 'json']);
    expect(result.calls.map(operationOf)).toEqual([
      's3 cp',
      'ssm send-command',
      ...rolling.flatMap(() => ['ssm list-commands', 'ssm list-command-invocations']),
      'ssm get-parameter',
      'ssm put-parameter',
      // AND then it asks which hosts carry the tag now: none joined, so nothing more is sent
      'ssm describe-instance-information',
    ]);
    // AND the jar went to the upload location under its sha256, as the operator command uploads it
    const [upload, send] = result.calls;
    expect(upload!.slice(-2)).toEqual([result.jarPath, uri]);
    expect(result.uploaded?.equals(result.jar)).toBe(true);
    // AND the document went to the tag, not a list of instances, with the release as parameters
    expect(optionOf(send!, '--document-name')).toBe(fleetSettings.documentName);
    expect(optionOf(send!, '--document-version')).toBe('$LATEST');
    expect(optionOf(send!, '--targets')).toBe(`Key=tag:${FLEET_TAG_KEY},Values=Ec2BlueGreen`);
    expect(send).not.toContain('--instance-ids');
    expect(optionOf(send!, '--max-concurrency')).toBe('1');
    expect(optionOf(send!, '--max-errors')).toBe('0');
    expect(JSON.parse(optionOf(send!, '--parameters')!)).toEqual({
      action: ['deploy'],
      artifactUri: [uri],
      sha256: [result.sha256],
      version: [VERSION],
    });
    expect(optionOf(send!, '--cloud-watch-output-config')).toBe(
      `CloudWatchOutputEnabled=true,CloudWatchLogGroupName=${fleetSettings.outputLogGroup}`,
    );
    expect(optionOf(send!, '--comment')).toBe(`Jenkins shop #42: deploy ${VERSION}`);
    // AND a line for each host as it starts and as it finishes
    expect(hostLines(result.stdout)).toEqual([
      'bluegreen-pipeline: host i-0aaa: InProgress (0 of 3 hosts deployed)',
      'bluegreen-pipeline: host i-0bbb: Pending (0 of 3 hosts deployed)',
      'bluegreen-pipeline: host i-0ccc: Pending (0 of 3 hosts deployed)',
      'bluegreen-pipeline: host i-0aaa: Success (1 of 3 hosts deployed)',
      'bluegreen-pipeline: host i-0bbb: InProgress (1 of 3 hosts deployed)',
      'bluegreen-pipeline: host i-0bbb: Success (2 of 3 hosts deployed)',
      'bluegreen-pipeline: host i-0ccc: InProgress (2 of 3 hosts deployed)',
      'bluegreen-pipeline: host i-0ccc: Success (3 of 3 hosts deployed)',
    ]);
    // AND the release is recorded for the hosts the group adds, in the contract's keys
    const put = callsOf(result.calls, 'ssm put-parameter')[0]!;
    expect(optionOf(put, '--name')).toBe(fleetSettings.releaseParameter);
    expect(put).toContain('--overwrite');
    const record = optionOf(put, '--value')!.split('\n');
    expect(record.map((line) => line.split('=')[0])).toEqual(Object.values(FLEET_RELEASE_KEYS));
    expect(record).toEqual([
      `artifactUri=${uri}`,
      `sha256=${result.sha256}`,
      `version=${VERSION}`,
      `commandId=${COMMAND_ID}`,
      expect.stringMatching(/^recordedAt=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      'recordedBy=jenkins',
      // AND the release it replaced, every host's warm standby now
      `previousArtifactUri=${OLD_URI}`,
      `previousSha256=${OLD_SHA256}`,
      'previousVersion=2.6.0',
    ]);
    expect(result.stdout).toContain(`every host runs ${VERSION} (command ${COMMAND_ID})`);
  });

  test.each<[string, Scenario['currentRecord'], string[]]>([
    ['nothing was recorded yet (FLEET_RELEASE_UNSET)', FLEET_RELEASE_UNSET, ['', '', '']],
    [
      'the same jar is recorded already (a rebuild): the record keeps its previous release',
      (sha256) => recordOf(sha256, VERSION, 'cmd-1', [OLD_URI, OLD_SHA256, '2.6.0']),
      [OLD_URI, OLD_SHA256, '2.6.0'],
    ],
  ])('the previous release it records when %s', (_case, currentRecord, previous) => {
    const result = deployToFleet({ rounds: rolling, currentRecord });
    expect(result.code, result.stderr).toBe(0);
    const record = recordIn(result.calls);
    expect(record.slice(-3)).toEqual([`previousArtifactUri=${previous[0]}`, `previousSha256=${previous[1]}`, `previousVersion=${previous[2]}`]);
  });

  test('when host 2 fails: names it with its status and output tail, names the host never reached and the one that took it, records nothing, and exits with its code', () => {
    // GIVEN a roll-out that SSM stops at the second host (MaxErrors 0)
    const output = Array.from({ length: 30 }, (_, line) => `engine line ${line + 1}`).join('\n');
    const result = deployToFleet({
      rounds: [
        ['InProgress', { 'i-0aaa': 'InProgress', 'i-0bbb': 'Pending', 'i-0ccc': 'Pending' }],
        ['InProgress', { 'i-0aaa': 'Success', 'i-0bbb': 'InProgress', 'i-0ccc': 'Pending' }],
        ['Failed', { 'i-0aaa': 'Success', 'i-0bbb': 'Failed', 'i-0ccc': 'Cancelled' }],
      ],
      details: {
        'i-0bbb': {
          Status: 'Failed',
          StatusDetails: 'Failed',
          ResponseCode: 5,
          StandardOutputContent: output,
          StandardErrorContent: 'bluegreen: error: the new release did not become healthy within 120s',
        },
        'i-0ccc': { Status: 'Cancelled', StatusDetails: 'Terminated', ResponseCode: -1 },
      },
    });

    // THEN
    expect(result.code).toBe(5);
    expect(result.calls.map(operationOf)).not.toContain('ssm put-parameter');
    expect(hostLines(result.stdout)).toContain('bluegreen-pipeline: host i-0bbb: Failed (1 of 3 hosts deployed)');
    const details = result.calls.filter((call) => operationOf(call) === 'ssm get-command-invocation');
    expect(details.map((call) => optionOf(call, '--instance-id'))).toEqual(['i-0bbb', 'i-0ccc']);
    expect(result.stderr).toContain(`the roll-out of ${VERSION} ended Failed (command ${COMMAND_ID})`);
    expect(result.stderr).toContain('host i-0bbb failed: Failed, exit code 5');
    expect(result.stderr).toContain('    | bluegreen: error: the new release did not become healthy within 120s');
    expect(result.stderr).toContain('    | engine line 30');
    expect(result.stderr).not.toContain('engine line 10\n');
    expect(result.stderr).not.toContain('host i-0ccc failed');
    expect(result.stderr).toContain('never reached, still on the previous release: i-0ccc');
    expect(result.stderr).toContain(`took ${VERSION}: i-0aaa`);
    expect(result.stderr).toContain(`${fleetSettings.releaseParameter} still records the previous release`);
    expect(result.stderr).toContain(`CloudWatch log group ${fleetSettings.outputLogGroup}, streams ${COMMAND_ID}/INSTANCE_ID/*`);
  });

  test('a command that SSM calls a success without any host is a failure: nothing was deployed, nothing recorded', () => {
    const result = deployToFleet({ rounds: [['Success', {}]] });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`no host carries tag:${FLEET_TAG_KEY}=Ec2BlueGreen, so nothing was deployed`);
    expect(result.calls.map(operationOf)).not.toContain('ssm put-parameter');
  });

  test('a refused send-command fails the build before anything is deployed or recorded', () => {
    const result = deployToFleet({ rounds: rolling, sendFails: true });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('AccessDeniedException');
    expect(result.stderr).toMatch(/sending .* to tag:BlueGreenFleet=Ec2BlueGreen failed .*; nothing was deployed/);
    expect(result.calls.map(operationOf)).toEqual(['s3 cp', 'ssm send-command']);
  });

  test('an aborted build stops following the roll-out, says it goes on in SSM, and records nothing', () => {
    // GIVEN a roll-out that does not end before Jenkins aborts the build (SIGTERM)
    const endless: Round[] = [['InProgress', { 'i-0aaa': 'InProgress', 'i-0bbb': 'Pending' }]];
    const started = Date.now();

    // WHEN
    const result = deployToFleet({ rounds: endless }, { FLEET_POLL_SECONDS: '1' }, 3000);

    // THEN
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(result.code).toBe(143);
    expect(result.stderr).toContain(`stopped following command ${COMMAND_ID} (the build was aborted). The roll-out goes on in SSM, but its release is not recorded`);
    expect(result.calls.map(operationOf)).not.toContain('ssm put-parameter');
  });

  describe('a host the Auto Scaling group added while the roll-out ran (SSM picked the targets when it was sent)', () => {
    /** The roll-out's three hosts, the one that joined meanwhile, and one that joined but is not Online yet. */
    const grownFleet = { 'i-0aaa': 'Online', 'i-0bbb': 'Online', 'i-0ccc': 'Online', 'i-0ddd': 'Online', 'i-0eee': 'ConnectionLost' };
    const catchingUp: Round[] = [
      ['InProgress', { 'i-0ddd': 'InProgress' }],
      ['Success', { 'i-0ddd': 'Success' }],
    ];

    test('gets the release too: once recorded, one catch-up by instance id, to that host only, with the same parameters, followed to the end', () => {
      // GIVEN a roll-out to three hosts, during which i-0ddd joined the fleet (and i-0eee, not Online yet)
      // WHEN
      const result = deployToFleet({ rounds: rolling, fleetHosts: grownFleet, catchUp: { rounds: catchingUp } });

      // THEN
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.calls.map(operationOf)).toEqual([
        's3 cp',
        'ssm send-command',
        ...rolling.flatMap(() => ['ssm list-commands', 'ssm list-command-invocations']),
        'ssm get-parameter',
        // AND the release is recorded before the catch-up, so a host that joins from now on boots it
        'ssm put-parameter',
        'ssm describe-instance-information',
        'ssm send-command',
        ...catchingUp.flatMap(() => ['ssm list-commands', 'ssm list-command-invocations']),
      ]);
      // AND the fleet is looked up by its tag, every page of it
      const [describe] = callsOf(result.calls, 'ssm describe-instance-information');
      expect(optionOf(describe!, '--filters')).toBe(`Key=tag:${FLEET_TAG_KEY},Values=Ec2BlueGreen`);
      // AND the catch-up goes to the host that joined and is Online, by id, not by tag
      const [rollOut, catchUp] = callsOf(result.calls, 'ssm send-command');
      expect(valuesOf(catchUp!, '--instance-ids')).toEqual(['i-0ddd']);
      expect(catchUp).not.toContain('--targets');
      expect(optionOf(catchUp!, '--comment')).toBe(`catch-up of ${COMMAND_ID}: deploy ${VERSION}`);
      for (const name of ['--document-name', '--document-version', '--parameters', '--timeout-seconds', '--cloud-watch-output-config', '--max-errors']) {
        expect(optionOf(catchUp!, name), name).toBe(optionOf(rollOut!, name));
      }
      expect(JSON.parse(optionOf(catchUp!, '--parameters')!)).toEqual({
        action: ['deploy'],
        artifactUri: [`${fleetSettings.uploadLocation}${result.sha256}.jar`],
        sha256: [result.sha256],
        version: [VERSION],
      });
      // AND it is followed as the roll-out is, host by host
      expect(callsOf(result.calls, 'ssm list-commands').slice(-catchingUp.length).map((call) => optionOf(call, '--command-id'))).toEqual(
        catchingUp.map(() => CATCH_UP_COMMAND_ID),
      );
      expect(hostLines(result.stdout).slice(-2)).toEqual([
        'bluegreen-pipeline: host i-0ddd: InProgress (0 of 1 hosts deployed)',
        'bluegreen-pipeline: host i-0ddd: Success (1 of 1 hosts deployed)',
      ]);
      // AND the host that is not Online is left to its boot, with a note
      expect(result.stdout).toContain(
        `host i-0eee joined the fleet during the roll-out but is ConnectionLost in SSM, not Online: skipped (when it boots, it deploys the recorded ${VERSION})`,
      );
      expect(result.stdout).toContain(`the hosts that joined during the roll-out run ${VERSION} too (command ${CATCH_UP_COMMAND_ID})`);
      // AND the record names the roll-out
      expect(recordIn(result.calls)).toContain(`commandId=${COMMAND_ID}`);
    });

    test('a host that joined but is not Online yet is skipped with a note: no catch-up, its boot reads the recorded release', () => {
      const result = deployToFleet({ rounds: rolling, fleetHosts: { ...grownFleet, 'i-0ddd': 'Inactive' } });
      expect(result.code, result.stderr).toBe(0);
      expect(callsOf(result.calls, 'ssm send-command')).toHaveLength(1);
      expect(result.calls.map(operationOf).at(-1)).toBe('ssm describe-instance-information');
      expect(result.stdout).toContain('host i-0ddd joined the fleet during the roll-out but is Inactive in SSM, not Online: skipped');
    });

    test('a failing catch-up fails the build with the host’s exit code, naming it with its output tail; the release stays recorded', () => {
      // GIVEN the deploy on the host that joined does not get healthy
      const output = Array.from({ length: 30 }, (_, line) => `engine line ${line + 1}`).join('\n');
      const result = deployToFleet({
        rounds: rolling,
        fleetHosts: grownFleet,
        catchUp: {
          rounds: [
            ['InProgress', { 'i-0ddd': 'InProgress' }],
            ['Failed', { 'i-0ddd': 'Failed' }],
          ],
          details: {
            'i-0ddd': {
              Status: 'Failed',
              StatusDetails: 'Failed',
              ResponseCode: 5,
              StandardOutputContent: output,
              StandardErrorContent: 'bluegreen: error: the new release did not become healthy within 120s',
            },
          },
        },
      });

      // THEN
      expect(result.code).toBe(5);
      expect(callsOf(result.calls, 'ssm send-command')).toHaveLength(2);
      expect(callsOf(result.calls, 'ssm put-parameter')).toHaveLength(1);
      expect(hostLines(result.stdout)).toContain('bluegreen-pipeline: host i-0ddd: Failed (0 of 1 hosts deployed)');
      const details = callsOf(result.calls, 'ssm get-command-invocation');
      expect(details.map((call) => [optionOf(call, '--command-id'), optionOf(call, '--instance-id')])).toEqual([[CATCH_UP_COMMAND_ID, 'i-0ddd']]);
      expect(result.stderr).toContain(
        `every host of the roll-out (command ${COMMAND_ID}) runs ${VERSION} and ${fleetSettings.releaseParameter} records it, but the catch-up of the hosts that joined the fleet meanwhile ended Failed (command ${CATCH_UP_COMMAND_ID})`,
      );
      expect(result.stderr).toContain('host i-0ddd failed: Failed, exit code 5');
      expect(result.stderr).toContain('    | bluegreen: error: the new release did not become healthy within 120s');
      expect(result.stderr).toContain('    | engine line 30');
      expect(result.stderr).not.toContain('engine line 10\n');
      expect(result.stderr).toContain(`streams ${CATCH_UP_COMMAND_ID}/INSTANCE_ID/*`);
      expect(result.stderr).toContain('Run this build again');
      expect(result.stdout).not.toContain('the hosts that joined during the roll-out run');
    });

    test('when SSM will not list the fleet, the build fails: the release is recorded, but a host that joined may be behind', () => {
      const result = deployToFleet({ rounds: rolling, describeFails: true });
      expect(result.code).toBe(1);
      expect(callsOf(result.calls, 'ssm put-parameter')).toHaveLength(1);
      expect(callsOf(result.calls, 'ssm send-command')).toHaveLength(1);
      expect(result.stderr).toContain('AccessDeniedException');
      expect(result.stderr).toContain(`asking SSM which hosts carry tag:${FLEET_TAG_KEY}=Ec2BlueGreen failed`);
      expect(result.stderr).toContain('ssm:DescribeInstanceInformation');
    });

    test('an aborted build stops following the catch-up and says the release is recorded and the catch-up goes on in SSM', () => {
      const endless: Round[] = [['InProgress', { 'i-0ddd': 'InProgress' }]];
      const result = deployToFleet(
        { rounds: rolling.slice(-1), fleetHosts: grownFleet, catchUp: { rounds: endless } },
        { FLEET_POLL_SECONDS: '1' },
        3000,
      );
      expect(result.code).toBe(143);
      expect(result.stderr).toContain(
        `stopped following command ${CATCH_UP_COMMAND_ID} (the build was aborted). The catch-up goes on in SSM and ${VERSION} is recorded`,
      );
      expect(callsOf(result.calls, 'ssm put-parameter')).toHaveLength(1);
    });
  });

  test.each<[string, Record<string, string>, RegExp]>([
    ['no fleet settings (not the fleet’s Jenkins)', { FLEET_DOCUMENT: '' }, /DEPLOY_MODE=fleet needs FLEET_DOCUMENT/],
    ['a target that is not a tag', { FLEET_TARGET: 'i-0123456789abcdef0' }, /FLEET_TARGET='i-0123456789abcdef0' is not tag:KEY=VALUE/],
    ['a max concurrency SSM would refuse', { FLEET_MAX_CONCURRENCY: '0' }, /FLEET_MAX_CONCURRENCY='0' is not a number of hosts/],
    ['DEPLOY_MODE=host on the fleet’s Jenkins', { DEPLOY_MODE: 'host' }, /this is the fleet's Jenkins, on an instance without the engine/],
  ])('fails with exit 2 before any AWS call on %s', (_case, env, message) => {
    const result = deployToFleet({ rounds: rolling }, env);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.calls).toEqual([]);
  });
});
