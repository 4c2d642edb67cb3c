/**
 * Which uploaded jars the fleet's release record keeps from expiring. The upload location's
 * lifecycle rule expires only objects tagged `RELEASE_RETENTION_TAG.unrecorded` (every upload
 * starts so); a jar the record names as its release or its previous one (what hosts the Auto
 * Scaling group adds boot, and what a fleet rollback deploys where there is no standby) is tagged
 * `recorded`, and tagged `unrecorded` again once a newer record no longer names it. Pure: the
 * caller applies the tags.
 */
import type { FleetRelease } from './fleet.js';

/** An S3 location: the bucket, and a key prefix ending in `/` (or empty). */
export interface UploadLocation {
  readonly bucket: string;
  readonly prefix: string;
}

/** The object keys to tag `recorded` and `unrecorded`. */
export interface RetentionChanges {
  readonly protect: readonly string[];
  readonly release: readonly string[];
}

/** The key of `uri` when it is an object under `location`; undefined for anything else (a CDK asset, a path on the host). */
export function uploadedKey(location: UploadLocation, uri: string): string | undefined {
  const prefix = `s3://${location.bucket}/${location.prefix}`;
  return uri.startsWith(prefix) && uri.length > prefix.length ? uri.slice(`s3://${location.bucket}/`.length) : undefined;
}

/** The uploaded jars a record names: its release and the previous one. */
export function recordedKeys(location: UploadLocation, record: FleetRelease | undefined): string[] {
  if (record === undefined) return [];
  const keys = [record.artifactUri, record.previousArtifactUri].map((uri) => uploadedKey(location, uri));
  return [...new Set(keys.filter((key): key is string => key !== undefined))];
}

/**
 * What recording `after` over `before` changes: every uploaded jar `after` names is protected
 * (again: tagging is idempotent, and an upload of the same jar resets its tags), and those only
 * `before` named are released.
 */
export function retentionChanges(location: UploadLocation, before: FleetRelease | undefined, after: FleetRelease | undefined): RetentionChanges {
  const protect = recordedKeys(location, after);
  const release = recordedKeys(location, before).filter((key) => !protect.includes(key));
  return { protect, release };
}
