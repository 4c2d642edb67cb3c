import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { type ArtifactSource, SAMPLE_APP_VERSION, sampleAppSource } from '../../lib/artifact.js';
import { ConfigError, lookupEnvironment, readConfig } from '../../lib/config.js';
import { fakeJar, synthesize } from './synth.js';

/** Reads the config from a plain object of context values; the default artifact is a stand-in. */
function configFrom(context: Record<string, unknown>) {
  const source: ArtifactSource = { defaultVersion: SAMPLE_APP_VERSION, buildDefault: () => fakeJar() };
  return readConfig((key) => context[key], { artifactSource: source });
}

const scratch = mkdtempSync(join(tmpdir(), 'bluegreen-config-'));
const textFileNamedJar = join(scratch, 'notes.jar');
writeFileSync(textFileNamedJar, 'not a zip');
const zipNotNamedJar = join(scratch, 'app.zip');
writeFileSync(zipNotNamedJar, Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(16)]));

describe('defaults', () => {
  test('no context gives t3.small, HTTP from anywhere, Jenkins and SSH closed, 120 s, the sample app', () => {
    // WHEN
    const config = configFrom({});

    // THEN
    expect(config.instanceType.toString()).toBe('t3.small');
    expect(config.httpAllowedCidrs).toEqual(['0.0.0.0/0']);
    expect(config.jenkinsAllowedCidrs).toEqual([]);
    expect(config.ssh).toBeUndefined();
    expect(config.tlsCertificateSecretArn).toBeUndefined();
    expect(config.vpcId).toBeUndefined();
    expect(config.healthTimeoutSeconds).toBe(120);
    expect(config.artifact).toMatchObject({ path: fakeJar(), version: SAMPLE_APP_VERSION });
    expect(config.artifact.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(config.jenkins).toEqual({ appRepository: undefined, githubTokenSecret: undefined });
  });

  test('no account or region is pinned unless an existing VPC must be looked up', () => {
    expect(lookupEnvironment(configFrom({}), { CDK_DEFAULT_ACCOUNT: '111111111111', CDK_DEFAULT_REGION: 'eu-west-1' })).toBeUndefined();
    expect(
      lookupEnvironment(configFrom({ vpcId: 'vpc-0123456789abcdef0' }), {
        CDK_DEFAULT_ACCOUNT: '111111111111',
        CDK_DEFAULT_REGION: 'eu-west-1',
      }),
    ).toEqual({ account: '111111111111', region: 'eu-west-1' });
  });
});

describe('accepted forms', () => {
  test.each([
    ['a JSON array (cdk.json)', ['203.0.113.0/24', '198.51.100.7/32']],
    ['a JSON array string (-c)', '["203.0.113.0/24","198.51.100.7/32"]'],
    ['a comma-separated string (-c)', ' 203.0.113.0/24 , 198.51.100.7/32 '],
  ])('CIDR lists as %s', (_form, value) => {
    expect(configFrom({ httpAllowedCidrs: value }).httpAllowedCidrs).toEqual(['203.0.113.0/24', '198.51.100.7/32']);
  });

  test('booleans and numbers given as strings on the command line', () => {
    const config = configFrom({ appInstanceRoleAccess: 'true', jenkinsAllowAnywhere: 'false', healthTimeout: '300' });
    expect(config.appInstanceRoleAccess).toBe(true);
    expect(config.jenkinsAllowedCidrs).toEqual([]);
    expect(config.healthTimeoutSeconds).toBe(300);
  });

  test('a given jar is checksummed and labelled with its digest unless a version is given', () => {
    const unlabelled = configFrom({ artifact: fakeJar() }).artifact;
    expect(unlabelled.version).toBe(`sha256-${unlabelled.sha256.slice(0, 12)}`);
    expect(configFrom({ artifact: fakeJar(), artifactVersion: '2.1.0+build.7' }).artifact.version).toBe('2.1.0+build.7');
  });

  test('SSH with a key pair and a CIDR', () => {
    expect(configFrom({ sshKeyPairName: 'ops', sshAllowedCidrs: '192.0.2.0/24' }).ssh).toEqual({
      keyPairName: 'ops',
      allowedCidrs: ['192.0.2.0/24'],
    });
  });
});

describe('Jenkins: the app repository, its branch and the GitHub token secret', () => {
  test.each([
    ['https', 'https://github.com/acme/shop.git'],
    ['https without .git, on a port, with a trailing slash', 'https://git.example.com:8443/team/shop/'],
    ['scp-like ssh', 'git@github.com:acme/shop.git'],
    ['ssh URL with a port', 'ssh://git@git.example.com:2222/team/shop.git'],
  ])('accepts a %s repository URL, with branch main by default', (_form, url) => {
    expect(configFrom({ appRepositoryUrl: url }).jenkins.appRepository).toEqual({ url, branch: 'main' });
  });

  test('takes the branch and the token secret, by name or by ARN', () => {
    const byName = configFrom({ appRepositoryUrl: 'https://github.com/acme/shop', appRepositoryBranch: 'release/1.x', githubTokenSecret: 'ci/github-token' });
    expect(byName.jenkins).toEqual({
      appRepository: { url: 'https://github.com/acme/shop', branch: 'release/1.x' },
      githubTokenSecret: 'ci/github-token',
    });
    const arn = 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:ci/github-token-AbCdEf';
    expect(configFrom({ githubTokenSecret: arn }).jenkins.githubTokenSecret).toBe(arn);
  });

  test('no repository: no job, whatever the branch says', () => {
    expect(configFrom({ appRepositoryBranch: 'develop' }).jenkins.appRepository).toBeUndefined();
  });
});

describe('fails at synth, naming the key and the value', () => {
  test.each<[string, Record<string, unknown>, RegExp]>([
    ['an unknown instance size', { instanceType: 't3.gigantic' }, /'instanceType' = "t3.gigantic": not a known EC2 instance type/],
    ['an unknown instance class', { instanceType: 'banana.small' }, /'instanceType' = "banana.small"/],
    ['a CDK alias instead of a class', { instanceType: 'burstable3.small' }, /'instanceType' = "burstable3.small"/],
    ['an instance type without a size', { instanceType: 't3' }, /'instanceType' = "t3"/],
    ['a Mac instance', { instanceType: 'mac2.metal' }, /'instanceType' = "mac2.metal": Mac instances/],
    ['a prefix length over 32', { httpAllowedCidrs: '10.0.0.0/33' }, /'httpAllowedCidrs' = "10.0.0.0\/33": '10.0.0.0\/33' is not an IPv4 CIDR/],
    ['an octet over 255', { httpAllowedCidrs: ['300.1.1.0/24'] }, /'httpAllowedCidrs' = \["300.1.1.0\/24"\]/],
    ['a word', { httpAllowedCidrs: 'office' }, /'httpAllowedCidrs' = "office": 'office' is not an IPv4 CIDR/],
    ['host bits set', { httpAllowedCidrs: '10.1.2.3/8' }, /'10.1.2.3\/8' has host bits set; did you mean 10.0.0.0\/8\?/],
    ['an IPv6 CIDR', { httpAllowedCidrs: '::/0' }, /'httpAllowedCidrs' = "::\/0": '::\/0' is IPv6/],
    ['an empty HTTP list', { httpAllowedCidrs: [] }, /'httpAllowedCidrs' = \[\]: no one could reach the site/],
    ['a broken JSON list', { httpAllowedCidrs: '["10.0.0.0/8"' }, /'httpAllowedCidrs' = "\[\\"10.0.0.0\/8\\"": looks like a JSON array/],
    ['a non-string CIDR', { jenkinsAllowedCidrs: [42] }, /'jenkinsAllowedCidrs' = \[42\]: 42 is not a CIDR string/],
    ['Jenkins open to a network: plain HTTP', { jenkinsAllowedCidrs: '203.0.113.0/24' }, /'jenkinsAllowedCidrs' = "203.0.113.0\/24": would open Jenkins' port 8080 to 203.0.113.0\/24, where it serves plain HTTP: the admin login would cross the network unencrypted\. Nothing was deployed.*AWS-StartPortForwardingSession/],
    ['Jenkins open to the internet', { jenkinsAllowedCidrs: '0.0.0.0/0' }, /'jenkinsAllowedCidrs' = "0.0.0.0\/0": would open Jenkins' port 8080 to 0.0.0.0\/0, where it serves plain HTTP/],
    ['Jenkins open to anywhere, even when asked for', { jenkinsAllowedCidrs: '0.0.0.0/0', jenkinsAllowAnywhere: 'true' }, /'jenkinsAllowAnywhere' = "true": Jenkins serves plain HTTP, so the stack never opens it.*AWS-StartPortForwardingSession/],
    ['a flag that is not a boolean', { jenkinsAllowAnywhere: 'yes' }, /'jenkinsAllowAnywhere' = "yes": expected true or false/],
    ['SSH CIDRs without a key pair', { sshAllowedCidrs: '192.0.2.0/24' }, /'sshAllowedCidrs' = "192.0.2.0\/24": port 22 opens only together with 'sshKeyPairName'/],
    ['SSH open to the internet', { sshKeyPairName: 'ops', sshAllowedCidrs: '0.0.0.0/0' }, /'sshAllowedCidrs' = "0.0.0.0\/0": SSH is never opened/],
    ['a key pair name with a newline', { sshKeyPairName: 'ops\nrm' }, /'sshKeyPairName' = "ops\\nrm"/],
    ['a malformed VPC id', { vpcId: 'vpc-xyz' }, /'vpcId' = "vpc-xyz": expected a VPC id/],
    ['a health timeout of 0', { healthTimeout: 0 }, /'healthTimeout' = 0: expected a whole number of seconds from 1 to 999/],
    ['a health timeout over 999', { healthTimeout: '1000' }, /'healthTimeout' = "1000"/],
    ['a fractional health timeout', { healthTimeout: 12.5 }, /'healthTimeout' = 12.5/],
    ['a version with a blank', { artifactVersion: 'release 1' }, /'artifactVersion' = "release 1": use up to 64 letters/],
    ['a TLS secret that is not a Secrets Manager ARN', { tlsCertificateSecretArn: 'arn:aws:s3:::certs' }, /'tlsCertificateSecretArn' = "arn:aws:s3:::certs"/],
    ['a missing artifact', { artifact: '/nonexistent/app.jar' }, /'artifact' = "\/nonexistent\/app.jar": \/nonexistent\/app.jar does not exist/],
    ['an artifact that is a directory', { artifact: scratch }, /'artifact' = ".*": .* is not a file; expected a .jar/],
    ['an artifact that is not a zip', { artifact: textFileNamedJar }, /'artifact' = ".*notes.jar": .* is not a jar: it does not start with a zip header/],
    ['an artifact not named .jar', { artifact: zipNotNamedJar }, /'artifact' = ".*app.zip": .* is not a .jar file/],
    ['a repository over plain http', { appRepositoryUrl: 'http://github.com/acme/shop.git' }, /'appRepositoryUrl' = "http:\/\/github.com\/acme\/shop.git": plain http is not accepted: use the https:\/\/ URL/],
    ['a repository URL with a token in it', { appRepositoryUrl: 'https://x:ghp_secret@github.com/acme/shop.git' }, /'appRepositoryUrl' = .*: credentials do not belong in the URL: name a secret with the token in githubTokenSecret/],
    ['a repository URL with a shell command', { appRepositoryUrl: 'https://github.com/acme/shop.git;rm -rf /' }, /'appRepositoryUrl' = .*: expected https:\/\/HOST\/OWNER\/REPO\(\.git\), git@HOST:OWNER\/REPO/],
    ['a repository URL with a quote', { appRepositoryUrl: "https://github.com/acme/sh'op" }, /'appRepositoryUrl' = /],
    ['a repository URL with $(...)', { appRepositoryUrl: 'git@github.com:acme/$(id).git' }, /'appRepositoryUrl' = /],
    ['a file path as repository', { appRepositoryUrl: '/srv/git/shop.git' }, /'appRepositoryUrl' = "\/srv\/git\/shop.git"/],
    ['an ssh host that reads as an option', { appRepositoryUrl: 'ssh://-oProxyCommand=id/x' }, /'appRepositoryUrl' = /],
    ['a branch with a blank', { appRepositoryUrl: 'https://github.com/acme/shop', appRepositoryBranch: 'main; rm -rf /' }, /'appRepositoryBranch' = "main; rm -rf \/": expected a plain branch name such as main or release\/1.x/],
    ['a branch with $(...)', { appRepositoryUrl: 'https://github.com/acme/shop', appRepositoryBranch: '$(id)' }, /'appRepositoryBranch' = "\$\(id\)"/],
    ['a branch with a backquote', { appRepositoryUrl: 'https://github.com/acme/shop', appRepositoryBranch: 'ma`id`in' }, /'appRepositoryBranch' = /],
    ['a branch that reads as an option', { appRepositoryUrl: 'https://github.com/acme/shop', appRepositoryBranch: '--upload-pack=id' }, /'appRepositoryBranch' = /],
    ['a branch with ..', { appRepositoryUrl: 'https://github.com/acme/shop', appRepositoryBranch: 'a..b' }, /'appRepositoryBranch' = "a..b"/],
    ['a token secret that is a token', { githubTokenSecret: 'ghp 123 456' }, /'githubTokenSecret' = "ghp 123 456": expected the name or ARN of an existing Secrets Manager secret/],
    ['a token secret ARN of another service', { githubTokenSecret: 'arn:aws:ssm:eu-west-1:111111111111:parameter/token' }, /'githubTokenSecret' = /],
  ])('fails if given %s', (_case, context, message) => {
    expect(() => configFrom(context)).toThrow(ConfigError);
    expect(() => configFrom(context)).toThrow(message);
  });

  test('fails if an existing VPC is named but the CLI found no account or region', () => {
    const config = configFrom({ vpcId: 'vpc-0123456789abcdef0' });
    expect(() => lookupEnvironment(config, {})).toThrow(/'vpcId' = "vpc-0123456789abcdef0": looking up an existing VPC needs an account and region/);
  });

  test('fails the whole synth, not just the config reader', () => {
    expect(() => synthesize({ instanceType: 't3.gigantic' })).toThrow(/Context 'instanceType' = "t3.gigantic"/);
  });
});

describe('the default artifact', () => {
  test('fails with a pointer to the artifact key when the build script is missing', () => {
    const missing = sampleAppSource(join(scratch, 'no-such-app'), join(scratch, 'build'));
    expect(() => readConfig(() => undefined, { artifactSource: missing })).toThrow(
      /'artifact' is unset: the default artifact is the sample app, built by .*no-such-app\/build, which is missing. Pass a jar with -c artifact=PATH.jar/,
    );
  });
});
