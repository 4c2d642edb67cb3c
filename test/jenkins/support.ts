/**
 * What the Jenkins tests share: the Jenkins tools' paths, a scratch directory, running a command
 * or a configure-jenkins function, and the settings the stack writes, rendered to JCasC as
 * configure-jenkins renders them.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { parse } from 'yaml';
import { FLEET_TAG_KEY } from '../../lib/contract.js';
import { JENKINS_ADMIN_USER, JENKINS_FLEET_SETTINGS_KEYS, JENKINS_SETTINGS_KEYS } from '../../lib/constructs/bluegreen-host.js';
import { projectPath } from '../../lib/paths.js';
import { jenkinsMemorySettings, memoryBudget } from '../../lib/memory-budget.js';

export const JENKINS_DIR = projectPath('assets', 'jenkins');
export const CONFIGURE_JENKINS = join(JENKINS_DIR, 'configure-jenkins');
export const PIPELINE = join(JENKINS_DIR, 'bluegreen-pipeline');
export const SUDOERS = join(JENKINS_DIR, 'sudoers');
export const FLEET_SUDOERS = join(JENKINS_DIR, 'sudoers-fleet');
export const FLEET_DEPLOY = join(JENKINS_DIR, 'bluegreen-fleet-deploy');

/** The build agent as configure-jenkins declares it (its readonly AGENT_* constants). */
export const AGENT = (() => {
  const script = readFileSync(CONFIGURE_JENKINS, 'utf8');
  const constant = (name: string) => new RegExp(`^readonly ${name}=(\\S+)$`, 'm').exec(script)![1]!;
  return { user: constant('AGENT_USER'), home: constant('AGENT_HOME'), node: constant('AGENT_NODE'), label: constant('AGENT_LABEL'), unitFile: constant('AGENT_UNIT_FILE') };
})();
export const scratch = mkdtempSync(join(tmpdir(), 'bluegreen-jenkins-'));
let scratchFiles = 0;

export function scratchFile(name: string, content: string): string {
  const file = join(scratch, `${scratchFiles++}-${name}`);
  writeFileSync(file, content);
  return file;
}

export function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', ...options });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs `snippet` in bash after sourcing configure-jenkins (which then runs nothing by itself). */
export function withConfigureJenkins(snippet: string, env: NodeJS.ProcessEnv = process.env) {
  return run('bash', ['-c', `set -Eeuo pipefail; source ${JSON.stringify(CONFIGURE_JENKINS)}; ${snippet}`], { env });
}

export type Settings = Record<(typeof JENKINS_SETTINGS_KEYS)[number], string> &
  Partial<Record<(typeof JENKINS_FLEET_SETTINGS_KEYS)[number], string>>;

export const ADMIN_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:HostJenkinsAdminPassword-AbCdEf';

/** Settings as the stack writes them; the default is a stack without job or token. */
export function settings(overrides: Partial<Settings> = {}): Settings {
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
    // The default single host's budget (t3.small).
    ...jenkinsMemorySettings(memoryBudget('single', 2048)),
    ...overrides,
  };
}

/** The fleet's Jenkins: on its own instance, deploying through the SSM document. */
export const fleetSettings: Record<(typeof JENKINS_FLEET_SETTINGS_KEYS)[number], string> = {
  deployMode: 'fleet',
  region: 'eu-west-1',
  documentName: 'Ec2BlueGreen-DeployDocument-AbC123',
  fleetTarget: `tag:${FLEET_TAG_KEY}=Ec2BlueGreen`,
  maxConcurrency: '1',
  releaseParameter: '/ec2-bluegreen/fleet-release',
  uploadLocation: 's3://cdk-hnb659fds-assets-111111111111-eu-west-1/cli-releases/',
  outputLogGroup: 'Ec2BlueGreen-DeployOutput',
};

export const httpsJob = { jobName: 'shop', repositoryUrl: 'https://github.com/acme/shop.git', repositoryBranch: 'main' };
export const sshJob = { jobName: 'shop', repositoryUrl: 'git@github.com:acme/shop.git', repositoryBranch: 'release/1.x' };

/** The settings file as the stack writes it: the fleet's keys only when there are any (as on the fleet's Jenkins). */
export function settingsFile(values: Settings): string {
  const keys = [...JENKINS_SETTINGS_KEYS, ...JENKINS_FLEET_SETTINGS_KEYS.filter((key) => values[key] !== undefined)];
  return scratchFile('settings', keys.map((key) => `${key}=${values[key]}`).join('\n'));
}

export function render(values: Settings, jenkinsUrl = 'http://localhost:8080/') {
  return run(CONFIGURE_JENKINS, ['render', settingsFile(values), jenkinsUrl]);
}

/** The rendered JCasC YAML, parsed. */
export function casc(values: Settings, jenkinsUrl?: string): any {
  const result = render(values, jenkinsUrl);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return parse(result.stdout);
}

/** The Job DSL script of the one job. */
export function jobScript(configuration: any): string {
  expect(configuration.jobs).toHaveLength(1);
  return configuration.jobs[0].script as string;
}

/** Whether every bracket closes and every single-quoted string ends: a cheap guard on spliced values. */
export function balanced(groovy: string): boolean {
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

/** Jenkins' global environment variables, as the rendered JCasC sets them. */
export function globalEnv(configuration: any): Record<string, string> {
  const properties = configuration.jenkins.globalNodeProperties as Array<{ envVars: { env: Array<{ key: string; value: string }> } }>;
  expect(properties).toHaveLength(1);
  return Object.fromEntries(properties[0]!.envVars.env.map(({ key, value }) => [key, value]));
}
