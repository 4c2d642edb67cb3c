/**
 * Which uploaded jars the fleet's release record keeps from expiring. The upload location's
 * lifecycle rule expires only objects tagged `RELEASE_RETENTION_TAG.unrecorded` (every upload
 * starts so); a jar the record names as its release or its previous one (what hosts the Auto
 * Scaling group adds boot, and what a fleet rollback deploys where there is no standby) is tagged
 * `recorded`, and tagged `unrecorded` again once a newer record no longer names it. The custom
 * resource and the operator command both apply it when they record a release.
 */
import { PutObjectTaggingCommand, type S3Client } from '@aws-sdk/client-s3';
import { RELEASE_RETENTION_TAG } from '../contract.js';
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

/** `Tagging` of a fresh upload, in S3's query-string form: unrecorded until a record names it. */
export const UPLOAD_TAGGING = `${RELEASE_RETENTION_TAG.key}=${RELEASE_RETENTION_TAG.unrecorded}`;

/** A tag that could not be set. */
export interface RetentionFailure {
  readonly key: string;
  /** `recorded` (the jar may expire while recorded) or `unrecorded` (it is only kept longer). */
  readonly tag: string;
  readonly error: Error;
}

/** Tags the objects as `changes` says; never throws, returns what failed. */
export async function applyRetention(s3: S3Client, location: UploadLocation, changes: RetentionChanges): Promise<RetentionFailure[]> {
  const failures: RetentionFailure[] = [];
  const planned = [
    ...changes.protect.map((key) => ({ key, tag: RELEASE_RETENTION_TAG.recorded })),
    ...changes.release.map((key) => ({ key, tag: RELEASE_RETENTION_TAG.unrecorded })),
  ];
  for (const { key, tag } of planned) {
    try {
      await s3.send(new PutObjectTaggingCommand({ Bucket: location.bucket, Key: key, Tagging: { TagSet: [{ Key: RELEASE_RETENTION_TAG.key, Value: tag }] } }));
    } catch (error) {
      failures.push({ key, tag, error: error as Error });
    }
  }
  return failures;
}

/** `s3://BUCKET/PREFIX/` as a location; undefined for anything else. */
export function parseUploadLocation(uri: string | undefined): UploadLocation | undefined {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/((?:[A-Za-z0-9._+=-]+\/)*)$/.exec(uri ?? '');
  return match === null ? undefined : { bucket: match[1]!, prefix: match[2]! };
}
