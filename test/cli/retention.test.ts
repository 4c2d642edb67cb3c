/**
 * The fleet's recorded jars never expire while recorded (cli/retention.ts, lib/deploy/retention.ts),
 * with the real AWS SDK on the wire against the loopback S3 stand-in: uploads start `unrecorded`
 * (what the upload location's lifecycle rule expires), recording tags the release and the one
 * before it `recorded`, and a newer record releases the one two back.
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { keepRecordedJars } from '../../cli/retention.js';
import { RELEASE_RETENTION_TAG } from '../../lib/contract.js';
import { nextFleetRelease, type FleetRelease } from '../../lib/deploy/fleet.js';
import { retentionChanges, UPLOAD_TAGGING } from '../../lib/deploy/retention.js';
import { LoopbackS3 } from '../support/s3-server.js';

const BUCKET = 'artifacts';
const LOCATION = { bucket: BUCKET, prefix: 'cli-releases/' };
const { key: TAG, recorded: RECORDED, unrecorded: UNRECORDED } = RELEASE_RETENTION_TAG;

let s3: LoopbackS3;
let client: S3Client;

beforeAll(async () => {
  s3 = await LoopbackS3.start({ buckets: [BUCKET] });
  client = new S3Client({ region: 'us-east-1', endpoint: s3.url, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
});

afterAll(async () => {
  client?.destroy();
  await s3?.close();
});

const keyOf = (name: string) => `cli-releases/${name}.jar`;
const uriOf = (name: string) => `s3://${BUCKET}/${keyOf(name)}`;

/** Uploads as the operator command does: tagged unrecorded. */
async function upload(name: string): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: keyOf(name), Body: `jar ${name}`, Tagging: UPLOAD_TAGGING }));
}

function recordOf(current: FleetRelease | undefined, artifactUri: string, version: string): FleetRelease {
  return nextFleetRelease(current, { artifactUri, sha256: version.padEnd(64, '0'), version, commandId: `cmd-${version}`, recordedAt: '2026-12-02T00:00:00Z', recordedBy: 'cli' });
}

const tagOf = (name: string) => s3.object(BUCKET, keyOf(name))?.tags[TAG];

describe('keepRecordedJars', () => {
  test('the record and its previous release stay recorded; a newer record releases the one two back; other uploads stay unrecorded', async () => {
    // GIVEN four uploads, a.jar to d.jar
    for (const name of ['a', 'b', 'c', 'd']) await upload(name);
    expect(['a', 'b', 'c', 'd'].map(tagOf)).toEqual([UNRECORDED, UNRECORDED, UNRECORDED, UNRECORDED]);
    const said: string[] = [];
    const say = (line: string) => said.push(line);

    // WHEN a is recorded, then b, then c
    const first = recordOf(undefined, uriOf('a'), 'a');
    await keepRecordedJars(client, LOCATION, undefined, first, say);
    expect(['a', 'b', 'c', 'd'].map(tagOf)).toEqual([RECORDED, UNRECORDED, UNRECORDED, UNRECORDED]);

    const second = recordOf(first, uriOf('b'), 'b');
    await keepRecordedJars(client, LOCATION, first, second, say);
    // THEN b is the release and a the previous one: both recorded
    expect(['a', 'b', 'c', 'd'].map(tagOf)).toEqual([RECORDED, RECORDED, UNRECORDED, UNRECORDED]);

    const third = recordOf(second, uriOf('c'), 'c');
    await keepRecordedJars(client, LOCATION, second, third, say);
    // AND a, two back, may expire again
    expect(['a', 'b', 'c', 'd'].map(tagOf)).toEqual([UNRECORDED, RECORDED, RECORDED, UNRECORDED]);
    expect(said).toEqual([]);
  });

  test('an upload of a recorded jar resets its tag; recording it again marks it again', async () => {
    await upload('e');
    const record = recordOf(undefined, uriOf('e'), 'e');
    await keepRecordedJars(client, LOCATION, undefined, record, () => {});
    expect(tagOf('e')).toBe(RECORDED);
    await upload('e');
    expect(tagOf('e')).toBe(UNRECORDED);
    await keepRecordedJars(client, LOCATION, record, record, () => {});
    expect(tagOf('e')).toBe(RECORDED);
  });

  test('a recorded jar that is gone: says so and what to do, and does not throw', async () => {
    const said: string[] = [];
    await keepRecordedJars(client, LOCATION, undefined, recordOf(undefined, uriOf('gone'), 'gone'), (line) => said.push(line));
    expect(said).toEqual([expect.stringMatching(/^warning: could not mark s3:\/\/artifacts\/cli-releases\/gone\.jar as recorded \(NoSuchKey: .*The jar is gone already: deploy it again to upload it\.$/)]);
  });
});

describe('retentionChanges', () => {
  test("only jars under the upload location count: the stack's own assets and paths on the host are left alone", () => {
    const asset = 's3://cdk-assets-111111111111-us-east-1/0f3c.jar';
    const before = recordOf(recordOf(undefined, uriOf('x'), 'x'), asset, 'asset');
    const after = recordOf(before, '/opt/app.jar', 'path');
    expect(retentionChanges(LOCATION, undefined, before)).toEqual({ protect: [keyOf('x')], release: [] });
    expect(retentionChanges(LOCATION, before, after)).toEqual({ protect: [], release: [keyOf('x')] });
  });

  test('the same jar as release and previous (a repeated record) is one key', () => {
    const record = { ...recordOf(undefined, uriOf('y'), 'y'), previousArtifactUri: uriOf('y') };
    expect(retentionChanges(LOCATION, record, record)).toEqual({ protect: [keyOf('y')], release: [] });
  });
});
