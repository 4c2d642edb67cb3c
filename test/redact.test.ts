/** lib/redact.ts: what a message may show of a value that can hold a credential. */
import { describe, expect, test } from 'vitest';
import { parseCommandLine } from '../cli/args.js';
import { CLI_EXIT_CODES, CliError } from '../cli/errors.js';
import { DEPLOYMENT_PROPERTIES } from '../lib/contract.js';
import { outputTail } from '../lib/deploy/invocation.js';
import { readDeploymentRequest } from '../lib/deploy/send-command.js';
import { holdsCredentials, looksLikeGitHubToken, redactCredentials } from '../lib/redact.js';

const TOKEN = `ghp_${'q7W2e9R4t6'.repeat(3)}XyZ123`;

describe('redactCredentials', () => {
  test.each([
    ['https user and password', 'clone https://user:hunter2@github.com/acme/shop.git failed', 'clone https://<hidden>@github.com/acme/shop.git failed'],
    ['a token as the https user', `"https://${TOKEN}@github.com/acme/shop"`, '"https://<hidden>@github.com/acme/shop"'],
    ['a password holding @', 'https://user:p@ss@host.example/x', 'https://<hidden>@host.example/x'],
    ['ssh user and password: the user stays', 'ssh://git:hunter2@host/x.git', 'ssh://git:<hidden>@host/x.git'],
    ['a presigned URL query', 'https://b.s3.amazonaws.com/app.jar?X-Amz-Signature=abc&X-Amz-Credential=AKIA', 'https://b.s3.amazonaws.com/app.jar?<hidden>'],
    ['a credential parameter in a path that was a URL', '/srv/https:/b/app.jar?X-Amz-Signature=abc&part=1&token=xyz', '/srv/https:/b/app.jar?X-Amz-Signature=<hidden>&part=1&token=<hidden>'],
    ['a GitHub token in prose', `token ${TOKEN} given`, 'token <hidden> given'],
    ['an AWS access key id', 'key AKIAIOSFODNN7EXAMPLE here', 'key <hidden> here'],
    ['a PEM private key', 'x -----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- y', 'x <hidden> y'],
  ])('hides %s', (_case, text, expected) => {
    expect(redactCredentials(text)).toBe(expected);
    expect(holdsCredentials(text)).toBe(true);
  });

  test.each([
    'git@github.com:acme/shop.git',
    'ssh://git@git.example.com:2222/team/shop.git',
    'https://github.com/acme/shop.git',
    's3://bucket/releases/app.jar',
    "expected https://HOST/OWNER/REPO(.git), git@HOST:OWNER/REPO(.git) or ssh://git@HOST/OWNER/REPO(.git)",
    'sha256 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
  ])('leaves %s as it is', (text) => {
    expect(redactCredentials(text)).toBe(text);
    expect(holdsCredentials(text)).toBe(false);
  });
});

test('looksLikeGitHubToken: prefixed and classic tokens, not secret names', () => {
  expect(looksLikeGitHubToken(TOKEN)).toBe(true);
  expect(looksLikeGitHubToken(`github_pat_${'a1'.repeat(20)}`)).toBe(true);
  expect(looksLikeGitHubToken('0123456789abcdef0123456789abcdef01234567')).toBe(true);
  expect(looksLikeGitHubToken('ci/github-token')).toBe(false);
  expect(looksLikeGitHubToken('ghp_short')).toBe(false);
});

/** The message `run` throws; fails the test when it does not throw. */
function thrown(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

// The synth errors (every context key) are test/constructs/context-keys.test.ts.
describe('the messages that echo a value given keep no credential', () => {
  test.each([
    ['a deploy URL with a password', ['deploy', 'https://user:hunter2@repo.example.com/app.jar', '--stack', 'X'], 'hunter2'],
    ['a presigned URL', ['deploy', 'https://b.s3.amazonaws.com/app.jar?X-Amz-Signature=deadbeef', '--stack', 'X'], 'deadbeef'],
    ['an s3 URI with a password', ['deploy', 's3://user:hunter2@bucket/app.jar', '--stack', 'X'], 'hunter2'],
    ['a stray argument holding a token', ['status', '--stack', 'X', `ghp_${'x1'.repeat(18)}`], 'x1x1x1x1'],
  ])('the command line: %s', (_case, argv, secret) => {
    const error = thrown(() => parseCommandLine(argv));
    expect(error).toBeInstanceOf(CliError);
    expect(error).toMatchObject({ exitCode: CLI_EXIT_CODES.usage });
    expect(error.message).not.toContain(secret);
    expect(error.message).toContain('<hidden>');
  });

  test('the deploy custom resource, whose reason CloudFormation shows in its events', () => {
    const error = thrown(() =>
      readDeploymentRequest({
        [DEPLOYMENT_PROPERTIES.instanceId]: 'i-0123456789abcdef0',
        [DEPLOYMENT_PROPERTIES.documentName]: 'Doc',
        [DEPLOYMENT_PROPERTIES.artifactUri]: 'https://user:hunter2@repo.example.com/app.jar',
        [DEPLOYMENT_PROPERTIES.sha256]: 'a'.repeat(64),
      }),
    );
    expect(error.message).toMatch(/ArtifactUri = "https:\/\/<hidden>@repo\.example\.com\/app\.jar" is not an s3:\/\/BUCKET\/KEY/);
    expect(error.message).not.toContain('hunter2');
  });
});

test("the host's output quoted in a failure reason keeps no credential the host echoed", () => {
  const stderr = 'bluegreen: error: could not download https://b.s3.amazonaws.com/app.jar?X-Amz-Signature=deadbeef&X-Amz-Security-Token=FwoG: 403. Nothing was changed.';
  const tail = outputTail(stderr, 500);
  expect(tail).toBe('bluegreen: error: could not download https://b.s3.amazonaws.com/app.jar?<hidden>: 403. Nothing was changed.');
});
