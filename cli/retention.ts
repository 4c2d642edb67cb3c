/**
 * Keeps the jars the fleet's release record names from expiring (lib/deploy/retention.ts): the
 * upload location's lifecycle rule expires only jars tagged `unrecorded`, as every upload starts.
 */
import { PutObjectTaggingCommand, type S3Client } from '@aws-sdk/client-s3';
import { RELEASE_RETENTION_TAG } from '../lib/contract.js';
import type { FleetRelease } from '../lib/deploy/fleet.js';
import { retentionChanges, type UploadLocation } from '../lib/deploy/retention.js';

/** `Tagging` of a fresh upload: S3's query-string form. */
export const UPLOAD_TAGGING = `${RELEASE_RETENTION_TAG.key}=${RELEASE_RETENTION_TAG.unrecorded}`;

/**
 * Tags the uploaded jars `after` names `recorded`, and those only `before` named `unrecorded`.
 * Never throws: the release is recorded either way; a failure is said, with what it risks and
 * what to do.
 */
export async function keepRecordedJars(
  s3: S3Client,
  location: UploadLocation | undefined,
  before: FleetRelease | undefined,
  after: FleetRelease | undefined,
  say: (text: string) => void,
): Promise<void> {
  if (location === undefined) return;
  const { protect, release } = retentionChanges(location, before, after);
  const tag = async (key: string, value: string) =>
    s3.send(new PutObjectTaggingCommand({ Bucket: location.bucket, Key: key, Tagging: { TagSet: [{ Key: RELEASE_RETENTION_TAG.key, Value: value }] } }));
  for (const key of protect) {
    try {
      await tag(key, RELEASE_RETENTION_TAG.recorded);
    } catch (error) {
      const { name, message } = error as Error;
      say(
        `warning: could not mark s3://${location.bucket}/${key} as recorded (${name}: ${message}). The release is recorded and every host ` +
          `runs it, but the upload location's lifecycle rule may delete that jar 90 days after its upload, and hosts the Auto Scaling group ` +
          `adds then could not boot it. ${name === 'NoSuchKey' ? 'The jar is gone already: deploy it again to upload it.' : `Grant s3:PutObjectTagging on s3://${location.bucket}/${location.prefix}* and run the same command again (a no-op on every host).`}`,
      );
    }
  }
  for (const key of release) {
    try {
      await tag(key, RELEASE_RETENTION_TAG.unrecorded);
    } catch (error) {
      const { name, message } = error as Error;
      // Gone already is what releasing it allows; anything else only keeps it longer.
      if (name !== 'NoSuchKey') say(`note: s3://${location.bucket}/${key} is no longer recorded, but marking it so failed (${name}: ${message}); it is kept until you delete it.`);
    }
  }
}
