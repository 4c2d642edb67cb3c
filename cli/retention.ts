/**
 * Keeps the jars the fleet's release record names from expiring (lib/deploy/retention.ts), and
 * says what a tag that could not be set risks and what to do.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { RELEASE_RETENTION_TAG } from '../lib/contract.js';
import type { FleetRelease } from '../lib/deploy/fleet.js';
import { applyRetention, retentionChanges, type UploadLocation } from '../lib/deploy/retention.js';

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
  for (const { key, tag, error } of await applyRetention(s3, location, retentionChanges(location, before, after))) {
    const { name, message } = error;
    const uri = `s3://${location.bucket}/${key}`;
    if (tag === RELEASE_RETENTION_TAG.recorded) {
      say(
        `warning: could not mark ${uri} as recorded (${name}: ${message}). The release is recorded and every host ` +
          `runs it, but the upload location's lifecycle rule may delete that jar 90 days after its upload, and hosts the Auto Scaling group ` +
          `adds then could not boot it. ${name === 'NoSuchKey' ? 'The jar is gone already: deploy it again to upload it.' : `Grant s3:PutObjectTagging on s3://${location.bucket}/${location.prefix}* and run the same command again (a no-op on every host).`}`,
      );
    } else if (name !== 'NoSuchKey') {
      // Gone already is what releasing it allows; anything else only keeps it longer.
      say(`note: ${uri} is no longer recorded, but marking it so failed (${name}: ${message}); it is kept until you delete it.`);
    }
  }
}
