/**
 * The context keys: the one list (lib/context-keys.ts) that the reader reads by and the
 * reference is generated from; misspelled keys failing synth with 'did you mean'; CDK's own keys
 * passing; keys set for the other layout (single host / fleet) failing with their own reason; and
 * no credential ever echoed in a synth error.
 */
import { readFileSync } from 'node:fs';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as cxapi from 'aws-cdk-lib/cx-api';
import { describe, expect, test } from 'vitest';
import { type ArtifactSource, SAMPLE_APP_VERSION } from '../../lib/artifact.js';
import { ConfigError, readConfig } from '../../lib/config.js';
import {
  classifyContextKeys,
  closeKnownKeys,
  CONTEXT_KEY_SPECS,
  CONTEXT_KEYS,
  CONTEXT_KEYS_DOC,
  type ContextKey,
  editDistance,
  elsewhere,
  keysOnlyFor,
  renderContextKeysReference,
} from '../../lib/context-keys.js';
import { projectPath } from '../../lib/paths.js';
import { fakeJar, synthesize } from './synth.js';

const source: ArtifactSource = { defaultVersion: SAMPLE_APP_VERSION, buildDefault: () => fakeJar() };

/** Reads the config as the app does: every key of `context` is a key the app was given. */
function configFrom(context: Record<string, unknown>) {
  return readConfig((key) => context[key], { artifactSource: source, givenKeys: Object.keys(context) });
}

/** The message `configFrom(context)` fails with; fails the test when it does not fail. */
function failure(context: Record<string, unknown>): string {
  try {
    configFrom(context);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(Object.keys(context))} to fail`);
}

const ALL_KEYS = Object.keys(CONTEXT_KEY_SPECS) as ContextKey[];
const CDK_JSON_KEYS = Object.keys(JSON.parse(readFileSync(projectPath('cdk.json'), 'utf8')).context as object);

describe('one list of keys', () => {
  test('docs/context-keys.md is the reference generated from it (regenerate: npx tsx scripts/context-keys-doc.ts)', () => {
    expect(readFileSync(projectPath(...CONTEXT_KEYS_DOC), 'utf8')).toBe(renderContextKeysReference());
  });

  test('the reference names every key once, with its default and its layout', () => {
    const reference = renderContextKeysReference();
    for (const key of ALL_KEYS) {
      const rows = reference.split('\n').filter((line) => line.startsWith(`| \`${key}\` |`));
      expect(rows, key).toHaveLength(1);
      const layout = CONTEXT_KEY_SPECS[key].layout;
      expect(rows[0]).toContain(layout === 'both' ? '| both |' : layout === 'single' ? '| single host only |' : '| fleet only |');
    }
  });

  test('the reader asks for exactly the keys of the list, single host and fleet together', () => {
    const asked = new Set<string>();
    const recording = (context: Record<string, unknown>) => (key: string) => {
      asked.add(key);
      return context[key];
    };
    readConfig(recording({}), { artifactSource: source });
    readConfig(recording({ hosts: 3, sshKeyPairName: 'ops', appRepositoryUrl: 'https://github.com/acme/shop' }), { artifactSource: source });
    expect([...asked].sort()).toEqual([...ALL_KEYS].sort());
    expect(Object.entries(CONTEXT_KEYS).every(([name, key]) => name === key)).toBe(true);
  });
});

describe('a misspelled key fails synth with what it may mean', () => {
  test.each<[string, Record<string, unknown>, string]>([
    ['a missing letter', { host: 3 }, "'hosts'"],
    ['a wrong letter', { instanceTypo: 't3.large' }, "'instanceType'"],
    ['swapped letters', { hsots: 3 }, "'hosts'"],
    ['another case', { InstanceType: 't3.large' }, "'instanceType'"],
    ['kebab case', { 'instance-type': 't3.large' }, "'instanceType'"],
    ['snake case', { health_timeout: 300 }, "'healthTimeout'"],
    ['the start of a key', { instance: 't3.large' }, "'instanceType'"],
    ['a key with more after it', { artifactPath: '/tmp/app.jar' }, "'artifact'"],
    ['a missing letter in a fleet key', { hosts: 3, maxConcurency: 2 }, "'maxConcurrency'"],
  ])('%s', (_case, context, suggestion) => {
    const [given] = Object.keys(context).filter((key) => !(key in CONTEXT_KEY_SPECS));
    const message = failure(context);
    expect(message).toMatch(new RegExp(`^Context '${given}' = .*: this app reads no such key, so the value would be ignored`));
    expect(message).toContain(`did you mean ${suggestion}`);
    expect(message).toContain('Nothing was synthesized. Rename the key (docs/context-keys.md lists every key).');
  });

  test('several misspelled keys are all named', () => {
    const message = failure({ host: 3, instanceTypo: 't3.large' });
    expect(message).toMatch(/^Context 'host' = 3: .*did you mean 'hosts'\? Also 'instanceTypo': did you mean 'instanceType'\?/);
  });

  test('fails the whole synth, before any construct is built', () => {
    expect(() => synthesize({ host: 3 })).toThrow(/Context 'host' = 3: this app reads no such key.*did you mean 'hosts'\?/);
  });

  test('closeness: a typo is one edit, a swap is one edit, and unrelated words are far', () => {
    expect(editDistance('hosts', 'host')).toBe(1);
    expect(editDistance('hosts', 'hsots')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(closeKnownKeys('region')).toEqual([]);
    expect(closeKnownKeys('stage')).toEqual([]);
    expect(closeKnownKeys('sshKeyPair')).toEqual(['sshKeyPairName']);
  });
});

describe("keys the app does not read and that are far from its own", () => {
  test("CDK's own keys pass silently: cdk.json's feature flags, every flag and setting aws-cdk-lib knows, lookup caches, the CLI's keys", () => {
    const cdkKeys = [
      ...CDK_JSON_KEYS,
      ...Object.keys(cxapi.FLAGS),
      ...Object.keys(cxapi.NEW_PROJECT_DEFAULT_CONTEXT),
      ...(Object.values(cxapi) as unknown[]).filter((value): value is string => typeof value === 'string' && /^(aws:|aws-cdk:|@aws-cdk\/)/.test(value)),
      'vpc-provider:account=111111111111:filter.vpc-id=vpc-0123456789abcdef0:region=eu-west-1:returnAsymmetricSubnets=true',
      'availability-zones:account=111111111111:region=eu-west-1',
      'ami:account=111111111111:filters.image-type.0=machine:region=eu-west-1',
      'ssm:account=111111111111:parameterName=/x:region=eu-west-1',
      'acknowledged-issue-numbers',
      'cli-telemetry',
      'cdk-some-setting',
    ];
    expect(cdkKeys.length).toBeGreaterThan(100);
    expect(classifyContextKeys(cdkKeys)).toEqual({ misspelled: [], ignored: [] });
  });

  test('the stack as cdk synth builds it (cdk.json and the test run\'s own CDK context) warns of nothing', () => {
    const { stack } = synthesize();
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('not read by this app'))).toEqual([]);
  });

  // A key far from every one the app reads may be meant for something else (a tool reading the
  // same cdk.json), so it does not fail synth; it is not silent either, so a forgotten setting shows.
  test('a far key builds the stack with a warning naming the key, never its value', () => {
    const { stack } = synthesize({ deployRegion: 'eu-west-1', stage: 'https://u:hunter2@example.com/' });
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('not read by this app'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.id).toBe('/Ec2BlueGreen');
    const message = String(warnings[0]!.entry.data);
    expect(message).toMatch(/^Context 'deployRegion', 'stage' are not read by this app, so their values are ignored\. .*docs\/context-keys\.md/);
    expect(message).not.toContain('eu-west-1');
    expect(message).not.toContain('hunter2');
  });
});

describe('a key set for the other layout fails with its own reason', () => {
  test('there are fleet-only and single-only keys, each with its own reason', () => {
    expect(keysOnlyFor('fleet').sort()).toEqual(['certificateArn', 'jenkinsInstanceMemoryMiB', 'jenkinsInstanceType', 'maxConcurrency']);
    expect(keysOnlyFor('single')).toEqual(['tlsCertificateSecretArn']);
    const reasons = [...keysOnlyFor('fleet'), ...keysOnlyFor('single')].map(elsewhere);
    expect(new Set(reasons).size).toBe(reasons.length);
  });

  const fleetValues: Record<string, unknown> = {
    maxConcurrency: 5,
    certificateArn: 'arn:aws:acm:eu-west-1:111111111111:certificate/0f2a5a1e-1111-2222-3333-444455556666',
    jenkinsInstanceType: 't3.medium',
    jenkinsInstanceMemoryMiB: 4096,
  };
  test.each(Object.keys(fleetValues))('%s on a single host', (key) => {
    const message = failure({ [key]: fleetValues[key] });
    expect(message).toMatch(new RegExp(`^Context '${key}' = .*: only applies to a fleet \\('hosts' 2 or more\\), and this stack is one host: `));
    expect(message).toContain(elsewhere(key as ContextKey));
    for (const other of keysOnlyFor('fleet').filter((name) => name !== key)) expect(message).not.toContain(elsewhere(other));
  });

  test('maxConcurrency on a single host talks about pacing, not TLS', () => {
    const message = failure({ maxConcurrency: 5 });
    expect(message).toMatch(/one host has nothing to pace/);
    expect(message).not.toMatch(/TLS|certificate/i);
  });

  test('jenkinsInstanceType on a single host points at instanceType, not TLS', () => {
    const message = failure({ jenkinsInstanceType: 't3.medium' });
    expect(message).toMatch(/runs Jenkins beside the app, on the instance 'instanceType' sizes/);
    expect(message).not.toMatch(/TLS|certificate/i);
  });

  test('certificateArn on a single host points at tlsCertificateSecretArn', () => {
    expect(failure({ certificateArn: fleetValues.certificateArn })).toMatch(/terminates TLS itself.*'tlsCertificateSecretArn'/);
  });

  test('tlsCertificateSecretArn on a fleet points at certificateArn', () => {
    const message = failure({ hosts: 3, tlsCertificateSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:tls-AbCdEf' });
    expect(message).toMatch(/^Context 'tlsCertificateSecretArn' = .*: only applies to the single host \('hosts' 1\), and this stack is a fleet of 3: the load balancer terminates TLS: give an ACM certificate in 'certificateArn'/);
  });
});

describe('no synth error echoes a credential', () => {
  const GITHUB_TOKEN = `ghp_${'A1b2C3d4E5'.repeat(3)}abcdef`;

  test.each<[string, Record<string, unknown>, string[]]>([
    ['a repository URL with a user and password', { appRepositoryUrl: 'https://user:hunter2@github.com/acme/shop.git' }, ['hunter2', 'user:']],
    ['a repository URL with a token as the user', { appRepositoryUrl: `https://${GITHUB_TOKEN}@github.com/acme/shop.git` }, [GITHUB_TOKEN]],
    ['a repository URL with a token and x-oauth-basic', { appRepositoryUrl: `https://${GITHUB_TOKEN}:x-oauth-basic@github.com/acme/shop` }, [GITHUB_TOKEN]],
    ['an ssh URL with a password', { appRepositoryUrl: 'ssh://git:hunter2@github.com/acme/shop.git' }, ['hunter2']],
    ['a misspelled key holding such a URL', { appRepositoryUrll: 'https://user:hunter2@github.com/acme/shop.git' }, ['hunter2']],
    ['the token itself as the token secret', { githubTokenSecret: GITHUB_TOKEN }, [GITHUB_TOKEN, GITHUB_TOKEN.slice(4, 20)]],
    ['a classic 40-hex token as the token secret', { githubTokenSecret: 'a'.repeat(8) + '0123456789abcdef0123456789abcdef' }, ['0123456789abcdef']],
    ['a fine-grained token with a blank as the token secret', { githubTokenSecret: `github_pat_${'Z9'.repeat(20)} ` }, ['Z9Z9Z9Z9']],
    [
      'a PEM private key instead of the TLS secret ARN',
      { tlsCertificateSecretArn: '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----' },
      ['MIIEvQIBADANBgkqhkiG9w0BAQEFAASC'],
    ],
    ['a presigned URL as the artifact', { artifact: 'https://bucket.s3.amazonaws.com/app.jar?X-Amz-Signature=deadbeefcafe&X-Amz-Security-Token=FwoGZX' }, ['deadbeefcafe', 'FwoGZX']],
  ])('%s', (_case, context, secrets) => {
    const message = failure(context);
    for (const secret of secrets) expect(message).not.toContain(secret);
    expect(message).toContain('<hidden>');
  });

  test('the URL error says where the credential was and what to do instead', () => {
    const message = failure({ appRepositoryUrl: 'https://user:hunter2@github.com/acme/shop.git' });
    expect(message).toBe(
      `Context 'appRepositoryUrl' = "https://<hidden>@github.com/acme/shop.git": credentials do not belong in the URL: name a secret ` +
        `with the token in githubTokenSecret instead, and give the URL without them (Jenkins would keep them in its job configuration). ` +
        `The part before '@' held them; it is shown as <hidden> and never echoed. If that password or token was real, revoke it: it was ` +
        `on a command line or in cdk.json.`,
    );
  });

  test('a token given as the token secret is refused, not written into the template as a secret name', () => {
    expect(failure({ githubTokenSecret: GITHUB_TOKEN })).toMatch(
      /^Context 'githubTokenSecret' = <hidden>: the value is shaped like a GitHub token itself \(not shown\), not the name of the Secrets Manager secret/,
    );
    expect(configFrom({ githubTokenSecret: 'ci/github-token' }).jenkins.githubTokenSecret).toBe('ci/github-token');
  });
});
