/** lib/redact.ts: what a message may show of a value that can hold a credential. */
import { describe, expect, test } from 'vitest';
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
