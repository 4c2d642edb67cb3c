import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { checkArtifact, inspectLocalJar, prepareArtifact, s3ChecksumOf, uploadKey } from '../../cli/artifact.js';
import { CLI_EXIT_CODES } from '../../cli/errors.js';
import type { StackTarget } from '../../cli/stack.js';
import { fakeJar } from '../constructs/synth.js';

const dir = mkdtempSync(join(tmpdir(), 'cli-artifact-'));
const notAJar = join(dir, 'notes.jar');
writeFileSync(notAJar, 'just text');
const jar = fakeJar();
const jarSha = createHash('sha256').update(readFileSync(jar)).digest('hex');

describe('inspectLocalJar', () => {
  test('checks, hashes and labels the jar as the stack does', () => {
    expect(inspectLocalJar(jar, undefined, undefined)).toEqual({ path: jar, sha256: jarSha, version: `sha256-${jarSha.slice(0, 12)}` });
    expect(inspectLocalJar(jar, 'v7', jarSha).version).toBe('v7');
  });

  test.each([
    [join(dir, 'missing.jar'), undefined, /missing\.jar does not exist\. Build the jar first .* Nothing was uploaded or deployed\.$/],
    [notAJar, undefined, /notes\.jar is not a jar: it does not start with a zip header\. Nothing was uploaded or deployed\.$/],
    [dir, undefined, /is not a file; expected a \.jar\./],
    [jar, 'f'.repeat(64), /has sha256 [0-9a-f]{64}, not the f{64} given with --sha256\. Nothing was uploaded or deployed\.$/],
  ])('%s fails with exit code 3', (path, sha256, message) => {
    expect(() => inspectLocalJar(path, undefined, sha256)).toThrow(message);
    try {
      inspectLocalJar(path, undefined, sha256);
    } catch (error) {
      expect(error).toMatchObject({ exitCode: CLI_EXIT_CODES.badArtifact });
    }
  });
});

test('the upload key is the content hash under the stack prefix; the checksum is its base64', () => {
  expect(uploadKey({ bucket: 'b', prefix: 'cli-releases/' }, 'ab'.repeat(32))).toBe(`cli-releases/${'ab'.repeat(32)}.jar`);
  expect(s3ChecksumOf('00'.repeat(31) + 'ff')).toBe(Buffer.from([...new Array(31).fill(0), 255]).toString('base64'));
});

describe('prepareArtifact', () => {
  const s3 = mockClient(S3Client);
  afterEach(() => s3.reset());
  // Unit files share workers (vitest.config.ts): a mock left in place would answer another file's real client.
  afterAll(() => s3.restore());
  const target: StackTarget = {
    stackName: 'Ec2BlueGreen',
    instanceId: 'i-0123456789abcdef0',
    documentName: 'Doc',
    artifactUploadLocation: { bucket: 'artifacts', prefix: 'cli-releases/' },
  };
  const client = () => new S3Client({ region: 'us-east-1' });

  test('uploads a new jar with its SHA-256 for S3 to check, and hands the document its s3:// URI', async () => {
    s3.on(HeadObjectCommand).rejects(Object.assign(new Error('NotFound'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } }));
    s3.on(PutObjectCommand).resolves({});
    const log: string[] = [];
    const artifact = await prepareArtifact(client(), target, checkArtifact({ kind: 'file', path: jar }, { version: 'v2' }), { version: 'v2' }, (line) => log.push(line));
    expect(artifact).toMatchObject({ uri: `s3://artifacts/cli-releases/${jarSha}.jar`, sha256: jarSha, version: 'v2' });
    const put = s3.commandCalls(PutObjectCommand)[0]!.args[0].input;
    expect(put).toMatchObject({ Bucket: 'artifacts', Key: `cli-releases/${jarSha}.jar`, ChecksumSHA256: s3ChecksumOf(jarSha), ContentType: 'application/java-archive' });
    // Unrecorded until a fleet's record names it: the upload location's lifecycle rule expires only those.
    expect(put.Tagging).toBe('ec2-bluegreen-release=unrecorded');
    expect(log).toEqual([expect.stringMatching(/^uploading .*app\.jar \(\d+ B\) to s3:\/\/artifacts\/cli-releases\//)]);
  });

  test('does not upload the same jar twice', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: readFileSync(jar).length });
    const log: string[] = [];
    await prepareArtifact(client(), target, checkArtifact({ kind: 'file', path: jar }, {}), {}, (line) => log.push(line));
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect(log).toEqual([expect.stringMatching(/already holds this jar; not uploading it again$/)]);
  });

  test('a role that may upload but not read (403 on HeadObject, as for the fleet\'s Jenkins) uploads; another error stops', async () => {
    s3.on(HeadObjectCommand).rejects(Object.assign(new Error('Forbidden'), { name: 'Forbidden', $metadata: { httpStatusCode: 403 } }));
    s3.on(PutObjectCommand).resolves({});
    await prepareArtifact(client(), target, checkArtifact({ kind: 'file', path: jar }, {}), {}, () => {});
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(1);

    s3.reset();
    s3.on(HeadObjectCommand).rejects(Object.assign(new Error('slow down'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } }));
    await expect(prepareArtifact(client(), target, checkArtifact({ kind: 'file', path: jar }, {}), {}, () => {})).rejects.toMatchObject({
      exitCode: CLI_EXIT_CODES.aws,
      message: expect.stringMatching(/^cannot reach s3:\/\/artifacts\/cli-releases\/.* \(SlowDown: slow down\)\. Nothing was uploaded or deployed\.$/),
    });
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
  });

  test('a stack without an upload location cannot take a local jar, and says what to do', async () => {
    await expect(prepareArtifact(client(), { ...target, artifactUploadLocation: undefined }, checkArtifact({ kind: 'file', path: jar }, {}), {}, () => {})).rejects.toMatchObject({
      exitCode: CLI_EXIT_CODES.aws,
      message: expect.stringMatching(/has no output ArtifactUploadLocation .* deploy s3:\/\/BUCKET\/KEY with --sha256\.$/),
    });
  });

  test('an s3:// URI with --sha256 is passed through without reading it', async () => {
    const artifact = await prepareArtifact(client(), target, { kind: 's3', uri: 's3://elsewhere/app.jar' }, { sha256: jarSha }, () => {});
    expect(artifact).toEqual({ uri: 's3://elsewhere/app.jar', sha256: jarSha, version: `sha256-${jarSha.slice(0, 12)}`, source: 's3://elsewhere/app.jar' });
    expect(s3.calls()).toHaveLength(0);
  });
});
