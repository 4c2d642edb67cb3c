/**
 * The jar the stack deploys on first boot: a given file, or the sample app built at synth time.
 * Runs at synth time only; the stack receives the result as plain values.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultReleaseLabel } from './contract.js';
import { projectPath } from './paths.js';

/** A jar on disk, with what the host needs to check and label it. */
export interface ArtifactFile {
  /** Absolute path of the jar. */
  readonly path: string;
  /** SHA-256 of the file, lower-case hex; `bluegreen deploy --sha256` checks it on the host. */
  readonly sha256: string;
  /** Release label passed to `bluegreen deploy --version`. */
  readonly version: string;
}

/** Produces the default jar when no `artifact` is given. */
export interface ArtifactSource {
  /** Builds (or reuses) the default jar for `version` and returns its path. */
  buildDefault(version: string): string;
  /** Version used when none is given. */
  readonly defaultVersion: string;
}

const ZIP_MAGIC = Buffer.from([0x50, 0x4b, 0x03, 0x04]);

/**
 * Resolves the artifact: `request.path` when given (must be an existing jar), else the default
 * source's jar. Throws with a message that says what is wrong with the file and what to do.
 */
export function resolveArtifact(
  request: { readonly path?: string; readonly version?: string },
  source: ArtifactSource = sampleAppSource(),
): ArtifactFile {
  if (request.path === undefined) {
    const version = request.version ?? source.defaultVersion;
    return inspectJar(source.buildDefault(version), version);
  }
  const jarPath = path.resolve(request.path);
  return inspectJar(jarPath, request.version);
}

function inspectJar(jarPath: string, version: string | undefined): ArtifactFile {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(jarPath);
  } catch {
    throw new Error(`${jarPath} does not exist. Build the jar first, or leave 'artifact' unset to deploy the sample app.`);
  }
  if (!stat.isFile()) throw new Error(`${jarPath} is not a file; expected a .jar.`);
  if (!jarPath.toLowerCase().endsWith('.jar')) throw new Error(`${jarPath} is not a .jar file.`);
  const content = fs.readFileSync(jarPath);
  if (!content.subarray(0, ZIP_MAGIC.length).equals(ZIP_MAGIC)) {
    throw new Error(`${jarPath} is not a jar: it does not start with a zip header.`);
  }
  const sha256 = createHash('sha256').update(content).digest('hex');
  return { path: jarPath, sha256, version: version ?? defaultReleaseLabel(sha256) };
}

/** The version the sample app is built with when `artifactVersion` is not given. */
export const SAMPLE_APP_VERSION = '1.0.0';

/**
 * The sample app (`assets/sample-app/build`, needs only a JDK), built into `.build/` and reused
 * while its sources are unchanged, so repeated synths publish the same asset.
 */
export function sampleAppSource(
  appDir: string = projectPath('assets', 'sample-app'),
  buildDir: string = projectPath('.build', 'sample-app'),
): ArtifactSource {
  return {
    defaultVersion: SAMPLE_APP_VERSION,
    buildDefault(version: string): string {
      const buildScript = path.join(appDir, 'build');
      if (!fs.existsSync(buildScript)) {
        throw new Error(
          `the default artifact is the sample app, built by ${buildScript}, which is missing. ` +
            `Pass a jar with -c artifact=PATH.jar.`,
        );
      }
      const out = path.join(buildDir, `sample-app-${version}-${directoryDigest(appDir).slice(0, 16)}.jar`);
      if (fs.existsSync(out)) return out;
      const build = spawnSync(buildScript, ['--version', version, '--out', out], { encoding: 'utf8' });
      if (build.status !== 0) {
        const output = `${build.stdout ?? ''}${build.stderr ?? ''}`.trim() || String(build.error ?? 'no output');
        throw new Error(
          `building the sample app failed (exit ${build.status ?? 'none'}): ${output}. ` +
            `It needs a JDK 17+ on PATH; or pass a jar with -c artifact=PATH.jar.`,
        );
      }
      return out;
    },
  };
}

/** SHA-256 over the relative paths and contents of every file under `dir`. */
function directoryDigest(dir: string): string {
  const hash = createHash('sha256');
  const files = fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
  for (const file of files) {
    hash.update(path.relative(dir, file)).update('\0').update(fs.readFileSync(file)).update('\0');
  }
  return hash.digest('hex');
}
