/**
 * Who may reach the instance metadata service, as synthesized: the users each kind of host tells
 * the guard (placeholder METADATA_USERS), the guard script every host may read, the context key
 * `appInstanceRoleAccess` and the warning synth gives when it is set. What the guard does on a
 * host is test/userdata/imds-guard.e2e.test.ts.
 */
import { readFileSync } from 'node:fs';
import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match, type Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { describe, expect, test } from 'vitest';
import { SAMPLE_APP_VERSION, type ArtifactSource } from '../../lib/artifact.js';
import { ConfigError, readConfig } from '../../lib/config.js';
import { APP_USER, JENKINS_AGENT_USER, JENKINS_USER, newMetadataGuard } from '../../lib/constructs/metadata-guard.js';
import { projectPath } from '../../lib/paths.js';
import { fakeJar, onlyResource, renderValue, synthesize } from './synth.js';

function configFrom(context: Record<string, unknown>) {
  const source: ArtifactSource = { defaultVersion: SAMPLE_APP_VERSION, buildDefault: () => fakeJar() };
  return readConfig((key) => context[key], { artifactSource: source });
}

/** The value the user data gives readonly NAME. */
function placeholder(userData: string, name: string): string {
  const match = new RegExp(`^readonly ${name}='([^']*)'$`, 'm').exec(userData);
  if (match === null) throw new Error(`the user data sets no ${name}`);
  return match[1]!;
}

const singleHostUserData = (template: Template) => renderValue(onlyResource(template, 'AWS::EC2::Instance').properties.UserData);
const fleetUserData = (template: Template) =>
  renderValue(onlyResource(template, 'AWS::EC2::LaunchTemplate').properties.LaunchTemplateData.UserData);
const jenkinsUserData = singleHostUserData;

/** The warnings about appInstanceRoleAccess, by construct path. */
function roleAccessWarnings(stack: Stack): Array<{ path: string; message: string }> {
  return Annotations.fromStack(stack)
    .findWarning('*', Match.stringLikeRegexp('appInstanceRoleAccess'))
    .map((warning) => ({ path: warning.id, message: String(warning.entry.data) }));
}

/** The actions the policies whose logical ids start with `prefix` allow on the object ending in `/key`. */
function actionsOnObject(template: Template, prefix: string, key: string): string[] {
  return Object.entries(template.findResources('AWS::IAM::Policy'))
    .filter(([id]) => id.startsWith(prefix))
    .flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as Array<Record<string, any>>)
    .filter((statement) => statement.Effect === 'Allow' && [statement.Resource].flat().some((resource) => renderValue(resource).endsWith(`/${key}`)))
    .flatMap((statement) => [statement.Action].flat());
}

describe('the context key appInstanceRoleAccess', () => {
  test('is false unless set; true and false are read from cdk.json or the command line', () => {
    expect(configFrom({}).appInstanceRoleAccess).toBe(false);
    expect(configFrom({ appInstanceRoleAccess: true }).appInstanceRoleAccess).toBe(true);
    expect(configFrom({ appInstanceRoleAccess: 'true' }).appInstanceRoleAccess).toBe(true);
    expect(configFrom({ appInstanceRoleAccess: 'false' }).appInstanceRoleAccess).toBe(false);
  });

  test.each([
    ['yes', /^Context 'appInstanceRoleAccess' = "yes": expected true or false\.$/],
    [1, /^Context 'appInstanceRoleAccess' = 1: expected true or false\.$/],
    ['TRUE', /^Context 'appInstanceRoleAccess' = "TRUE": expected true or false\.$/],
  ])('refuses %j, naming the key and the value', (value, message) => {
    expect(() => configFrom({ appInstanceRoleAccess: value })).toThrow(ConfigError);
    expect(() => configFrom({ appInstanceRoleAccess: value })).toThrow(message);
    expect(() => synthesize({ appInstanceRoleAccess: value })).toThrow(message);
  });
});

describe('the single host', () => {
  const byDefault = synthesize();
  const allowed = synthesize({
    appInstanceRoleAccess: 'true',
    appRepositoryUrl: 'https://github.com/acme/shop.git',
    githubTokenSecret: 'ci/github-token',
    tlsCertificateSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:bluegreen/tls-AbCdEf',
  });

  test('by default lets only root reach the metadata service: the app is blocked, and synth warns of nothing', () => {
    expect(placeholder(singleHostUserData(byDefault.template), 'METADATA_USERS')).toBe('');
    expect(roleAccessWarnings(byDefault.stack)).toEqual([]);
  });

  test('with appInstanceRoleAccess lets the app user reach it too, and changes nothing else in the user data', () => {
    const userData = singleHostUserData(allowed.template);
    expect(placeholder(userData, 'METADATA_USERS')).toBe(APP_USER);
    const withoutUsers = (text: string) => text.replace(/^readonly METADATA_USERS='[^']*'$/m, '');
    const sameOtherwise = synthesize({
      appRepositoryUrl: 'https://github.com/acme/shop.git',
      githubTokenSecret: 'ci/github-token',
      tlsCertificateSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:bluegreen/tls-AbCdEf',
    });
    expect(withoutUsers(userData)).toBe(withoutUsers(singleHostUserData(sameOtherwise.template)));
  });

  test('with appInstanceRoleAccess synth warns, on the host, what whoever takes over the app can then reach', () => {
    const warnings = roleAccessWarnings(allowed.stack);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.path).toBe('/Ec2BlueGreen/Host');
    const message = warnings[0]!.message;
    expect(message).toContain(`appInstanceRoleAccess is true: the app (user '${APP_USER}', which serves the internet) may get the instance role's credentials`);
    expect(message).toContain("read Jenkins' admin password, the GitHub token and the TLS certificate's private key from Secrets Manager");
    expect(message).toContain('read every SSM parameter in the region');
    expect(message).toContain('Leave appInstanceRoleAccess unset unless the app itself calls AWS.');
  });

  test('names only the secrets the host has', () => {
    const message = roleAccessWarnings(synthesize({ appInstanceRoleAccess: true }).stack)[0]!.message;
    expect(message).toContain("read Jenkins' admin password from Secrets Manager");
    expect(message).not.toMatch(/GitHub|TLS/);
  });

  test('downloads the guard from its own asset, which the role may read and nothing more', () => {
    const uri = placeholder(singleHostUserData(byDefault.template), 'METADATA_GUARD_URI');
    expect(uri).toMatch(/^s3:\/\/cdk-[a-z0-9]+-assets-<AWS::AccountId>-<AWS::Region>\/[0-9a-f]{64}\.sh$/);
    const key = uri.split('/').pop()!;
    expect(actionsOnObject(byDefault.template, 'HostRole', key)).toEqual(['s3:GetObject']);
  });
});

describe('a fleet', () => {
  const byDefault = synthesize({ hosts: 2 });
  const allowed = synthesize({ hosts: 2, appInstanceRoleAccess: 'true' });

  test('app hosts and the Jenkins host by default let only root reach the metadata service: builds deploy to the fleet through a root-owned command', () => {
    expect(placeholder(fleetUserData(byDefault.template), 'METADATA_USERS')).toBe('');
    expect(placeholder(jenkinsUserData(byDefault.template), 'METADATA_USERS')).toBe('');
    expect(roleAccessWarnings(byDefault.stack)).toEqual([]);
  });

  test('with appInstanceRoleAccess the app hosts let the app user through; Jenkins is unchanged; synth warns on the fleet', () => {
    expect(placeholder(fleetUserData(allowed.template), 'METADATA_USERS')).toBe(APP_USER);
    expect(placeholder(jenkinsUserData(allowed.template), 'METADATA_USERS')).toBe('');
    const warnings = roleAccessWarnings(allowed.stack);
    expect(warnings.map((warning) => warning.path)).toEqual(['/Ec2BlueGreen/Fleet']);
    expect(warnings[0]!.message).toContain('read every SSM parameter in the region');
    expect(warnings[0]!.message).not.toContain('Secrets Manager');
  });

  test('each role may read the guard script', () => {
    for (const [userData, rolePrefix] of [
      [fleetUserData(byDefault.template), 'FleetRole'],
      [jenkinsUserData(byDefault.template), 'JenkinsRole'],
    ] as const) {
      const key = placeholder(userData, 'METADATA_GUARD_URI').split('/').pop()!;
      expect(key).toMatch(/^[0-9a-f]{64}\.sh$/);
      expect(actionsOnObject(byDefault.template, rolePrefix, key), rolePrefix).toEqual(['s3:GetObject']);
    }
  });
});

describe('the users the guard is told about', () => {
  test('are the users the engine runs the app as, the Jenkins package creates and configure-jenkins creates for the builds', () => {
    expect(readFileSync(projectPath('assets', 'instance', 'lib', 'slots.sh'), 'utf8')).toMatch(new RegExp(`^readonly SLOT_USER=${APP_USER}$`, 'm'));
    expect(readFileSync(projectPath('assets', 'jenkins', 'configure-jenkins'), 'utf8')).toMatch(new RegExp(`^readonly JENKINS_USER=${JENKINS_USER}$`, 'm'));
    expect(readFileSync(projectPath('assets', 'jenkins', 'configure-jenkins'), 'utf8')).toMatch(new RegExp(`^readonly AGENT_USER=${JENKINS_AGENT_USER}$`, 'm'));
  });

  test('must be plain user names: anything else fails synth before it reaches the boot script', () => {
    const stack = new Stack(new App(), 'Guard');
    const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    expect(() => newMetadataGuard(stack, role, ['jenkins', 'ssm user'])).toThrow(
      "Guard: 'ssm user' is not a user name the metadata guard can allow (lower-case letters, digits, _ and -)",
    );
  });
});
