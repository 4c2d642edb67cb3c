/**
 * The jar a deploy hands the document: a local jar, checked and uploaded to the stack's artifact
 * location, or an object already in S3. The checks and the default version are the stack's own
 * (lib/artifact.ts), so `cdk deploy -c artifact=app.jar` and this command label a jar alike.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type ArtifactFile, resolveArtifact } from '../lib/artifact.js';
import { defaultReleaseLabel } from '../lib/contract.js';
import type { ArtifactSelection } from './args.js';
import { CLI_EXIT_CODES, CliError } from './errors.js';
import { UPLOAD_TAGGING } from '../lib/deploy/retention.js';
import { STACK_OUTPUTS, type S3Location, type StackTarget } from './stack.js';

/** What the document's deploy action gets. */
export interface DeployArtifact {
  /** `s3://BUCKET/KEY`. */
  readonly uri: string;
  readonly sha256: string;
  readonly version: string;
  /** Where it came from, for messages: the local path or the URI. */
  readonly source: string;
  readonly bytes?: number;
}

/** A local jar, checked as the stack checks `-c artifact`. Throws a `CliError` (exit 3) saying what is wrong. */
export function inspectLocalJar(path: string, version: string | undefined, sha256: string | undefined): ArtifactFile {
  const absolute = resolve(path);
  if (!existsSync(absolute)) {
    throw new CliError(`${absolute} does not exist. Build the jar first (for Gradle: build/libs/*.jar). Nothing was uploaded or deployed.`, CLI_EXIT_CODES.badArtifact);
  }
  let artifact: ArtifactFile;
  try {
    artifact = resolveArtifact({ path: absolute, version });
  } catch (error) {
    throw new CliError(`${(error as Error).message} Nothing was uploaded or deployed.`, CLI_EXIT_CODES.badArtifact);
  }
  if (sha256 !== undefined && sha256 !== artifact.sha256) {
    throw new CliError(
      `${absolute} has sha256 ${artifact.sha256}, not the ${sha256} given with --sha256. Nothing was uploaded or deployed.`,
      CLI_EXIT_CODES.badArtifact,
    );
  }
  return artifact;
}

/**
 * The key a jar is uploaded under: its sha256, so the same jar is uploaded once and an object
 * never changes once written (the host checks the sha256 anyway).
 */
export function uploadKey(location: S3Location, sha256: string): string {
  return `${location.prefix}${sha256}.jar`;
}

/** `s3://bucket/key` as its bucket and key. */
export function parseS3Uri(uri: string): { readonly bucket: string; readonly key: string } {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (match === null) throw new Error(`${uri} is not s3://BUCKET/KEY`);
  return { bucket: match[1]!, key: match[2]! };
}

/** S3's `x-amz-checksum-sha256`: the digest in base64, which S3 checks against what it received. */
export function s3ChecksumOf(sha256Hex: string): string {
  return Buffer.from(sha256Hex, 'hex').toString('base64');
}

export interface ArtifactLog {
  (message: string): void;
}

/** A deploy's artifact after the checks that need no AWS: a local jar read, checked and hashed, or an S3 URI. */
export type CheckedArtifact = { readonly kind: 'file'; readonly jar: ArtifactFile } | { readonly kind: 's3'; readonly uri: string };

/**
 * The checks of `selection` that need nothing but this machine: a local jar exists, is a jar and
 * matches --sha256. They run before any region, credential or AWS call, so a wrong path fails as
 * what it is, also where no AWS is configured. Throws a `CliError` (exit 3).
 */
export function checkArtifact(selection: ArtifactSelection, options: { readonly version?: string; readonly sha256?: string }): CheckedArtifact {
  return selection.kind === 's3' ? selection : { kind: 'file', jar: inspectLocalJar(selection.path, options.version, options.sha256) };
}

/** Resolves `artifact` to what the document deploys: uploads a local jar, hashes an S3 object when no sha256 was given. */
export async function prepareArtifact(
  s3: S3Client,
  target: StackTarget,
  artifact: CheckedArtifact,
  options: { readonly version?: string; readonly sha256?: string },
  log: ArtifactLog,
): Promise<DeployArtifact> {
  if (artifact.kind === 's3') {
    const sha256 = options.sha256 ?? (await hashS3Object(s3, artifact.uri, log));
    return { uri: artifact.uri, sha256, version: options.version ?? defaultReleaseLabel(sha256), source: artifact.uri };
  }
  const { jar } = artifact;
  const location = target.artifactUploadLocation;
  if (location === undefined) {
    throw new CliError(
      `stack ${target.stackName} has no output ${STACK_OUTPUTS.artifactUploadLocation} (the S3 location the instance may read jars from), ` +
        'so a local jar cannot be uploaded for it. Update the stack (`npx cdk deploy`) to a version that has it, or upload the jar ' +
        'where the instance role can read it and deploy s3://BUCKET/KEY with --sha256.',
      CLI_EXIT_CODES.aws,
    );
  }
  const key = uploadKey(location, jar.sha256);
  const uri = `s3://${location.bucket}/${key}`;
  const content = readFileSync(jar.path);
  if (await hasObject(s3, location.bucket, key, content.length)) {
    log(`${uri} already holds this jar; not uploading it again`);
  } else {
    log(`uploading ${jar.path} (${formatBytes(content.length)}) to ${uri}`);
    try {
      await s3.send(
        new PutObjectCommand({
          Bucket: location.bucket,
          Key: key,
          Body: content,
          ContentType: 'application/java-archive',
          ChecksumSHA256: s3ChecksumOf(jar.sha256),
          // Expires with the upload location's lifecycle rule unless a fleet's record names it (cli/retention.ts).
          Tagging: UPLOAD_TAGGING,
        }),
      );
    } catch (error) {
      const { name, message } = error as Error;
      throw new CliError(`uploading ${jar.path} to ${uri} failed (${name}: ${message}). Nothing was deployed.`, CLI_EXIT_CODES.aws);
    }
  }
  return { uri, sha256: jar.sha256, version: jar.version, source: jar.path, bytes: content.length };
}

async function hasObject(s3: S3Client, bucket: string, key: string, bytes: number): Promise<boolean> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return head.ContentLength === bytes;
  } catch (error) {
    const { name, message, $metadata } = error as Error & { $metadata?: { httpStatusCode?: number } };
    const status = $metadata?.httpStatusCode;
    if (name === 'NotFound' || name === 'NoSuchKey' || status === 404) return false;
    // HeadObject needs s3:GetObject, and without s3:ListBucket S3 answers 403 for a missing key
    // too. A role that may only upload (the fleet's Jenkins) cannot tell, so it uploads: the key
    // is the jar's sha256, so writing it again writes the same bytes.
    if (name === 'Forbidden' || name === 'AccessDenied' || status === 403) return false;
    throw new CliError(`cannot reach s3://${bucket}/${key} (${name}: ${message}). Nothing was uploaded or deployed.`, CLI_EXIT_CODES.aws);
  }
}

async function hashS3Object(s3: S3Client, uri: string, log: ArtifactLog): Promise<string> {
  const { bucket, key } = parseS3Uri(uri);
  log(`reading ${uri} to compute its sha256 (give --sha256 to skip this)`);
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const hash = createHash('sha256');
    for await (const chunk of object.Body as AsyncIterable<Uint8Array>) hash.update(chunk);
    return hash.digest('hex');
  } catch (error) {
    const { name, message } = error as Error;
    throw new CliError(`cannot read ${uri} (${name}: ${message}). Nothing was deployed; check the URI, or pass --sha256.`, CLI_EXIT_CODES.badArtifact);
  }
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
