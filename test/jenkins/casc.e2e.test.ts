/**
 * The JCasC configuration configure-jenkins renders from the settings the stack writes: the
 * admin user, the job, the GitHub credentials and webhook, and what it refuses to splice.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { JENKINS_FLEET_SETTINGS_KEYS, JENKINS_POLL_MINUTES, JENKINS_SETTINGS_KEYS } from '../../lib/constructs/bluegreen-host.js';
import { JENKINS_AGENT_USER } from '../../lib/constructs/metadata-guard.js';
import { renderValue, resourceById, synthesize } from '../constructs/synth.js';
import {
  ADMIN_SECRET_ARN,
  AGENT,
  balanced,
  casc,
  CONFIGURE_JENKINS,
  fleetSettings,
  JENKINS_DIR,
  httpsJob,
  jobScript,
  render,
  run,
  scratchFile,
  settings,
  sshJob,
  withConfigureJenkins,
} from './support.js';

describe('the JCasC configuration configure-jenkins renders', () => {
  test('from the settings the stack synthesizes: valid YAML with the job and the credentials, polling behind the port forward', () => {
    // GIVEN the settings parameter of a stack with a job and a token (Jenkins is only ever reached
    // through the port forward: it serves plain HTTP)
    const { template } = synthesize({
      appRepositoryUrl: 'https://github.com/acme/shop.git',
      githubTokenSecret: 'ci/github-token',
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
    const result = run(CONFIGURE_JENKINS, ['render', scratchFile('settings', deployed), 'http://localhost:8080/']);

    // THEN
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const configuration = parse(result.stdout);
    expect(Object.keys(configuration).sort()).toEqual(['credentials', 'jenkins', 'jobs', 'unclassified']);
    expect(configuration.unclassified.gitHubPluginConfig).toEqual({
      hookUrl: 'http://localhost:8080/github-webhook/',
      configs: [{ name: 'GitHub', apiUrl: 'https://api.github.com', credentialsId: 'github-token', manageHooks: false }],
    });
    const script = jobScript(configuration);
    expect(script).toContain("pipelineJob('shop')");
    expect(script).toContain("url('https://github.com/acme/shop.git')");
    expect(script).toContain("branch('*/main')");
    expect(script).toContain("scmpoll_spec('H/2 * * * *')");
  });

  test('always: a local admin user with the password from the secret file, no sign-up, nothing for anonymous users', () => {
    const configuration = casc(settings());
    expect(configuration.jenkins.securityRealm).toEqual({
      local: { allowsSignup: false, users: [{ id: 'admin', name: 'Administrator', password: '${adminPassword}' }] },
    });
    expect(configuration.jenkins.authorizationStrategy).toEqual({ loggedInUsersCanDoAnything: { allowAnonymousRead: false } });
    expect(configuration.jenkins.systemMessage).toContain('/etc/bluegreen-jenkins/jenkins.yaml');
  });

  test.each([
    ['the single host', settings({ ...httpsJob })],
    ['the fleet’s Jenkins', settings({ ...httpsJob, ...fleetSettings })],
  ])('on %s: the built-in node runs no build; the one agent, on loopback over WebSocket, runs them one at a time as jenkins-agent', (_case, values) => {
    // WHEN
    const configuration = casc(values);

    // THEN the controller (which holds the secrets) has no executor and takes no build by label
    expect(configuration.jenkins.numExecutors).toBe(0);
    expect(configuration.jenkins.mode).toBe('EXCLUSIVE');
    // AND no TCP port for agents is opened: the agent comes in through Jenkins' own HTTP port
    expect(configuration.jenkins.slaveAgentPort).toBe(-1);
    // AND the only node with an executor is the agent the unit starts, rooted in its user's home
    expect(configuration.jenkins.nodes).toEqual([
      {
        permanent: {
          name: AGENT.node,
          nodeDescription: `Builds of this host, run by jenkins-agent.service as ${JENKINS_AGENT_USER}`,
          labelString: AGENT.label,
          numExecutors: 1,
          mode: 'NORMAL',
          remoteFS: AGENT.home,
          retentionStrategy: 'always',
          launcher: { inbound: { webSocket: true } },
        },
      },
    ]);
    // AND the Jenkinsfile asks for that agent's label
    expect(readFileSync(join(JENKINS_DIR, 'Jenkinsfile'), 'utf8')).toContain(`agent { label '${AGENT.label}' }`);
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
