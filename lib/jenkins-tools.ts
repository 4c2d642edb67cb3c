/**
 * The Jenkins tools a host installs in JENKINS_TOOLS_DIR: `assets/jenkins/` (configure-jenkins,
 * bluegreen-pipeline, the templates) plus the operator command (`cli/`) bundled into one file,
 * `ec2-bluegreen.mjs`, which the pipeline's fleet mode runs with the host's Node.js. The fleet
 * roll-out then exists once, in TypeScript: the pipeline calls the command an operator runs.
 *
 * Both are built at synth time into the ignored `.build/` folder, offline: esbuild bundles the
 * command with the AWS SDK clients it uses (the host has no node_modules), and the bundle is
 * rebuilt only when one of the files it was built from changed.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { engineTreeHash } from './engine-bundle.js';
import { projectPath } from './paths.js';

/** The bundled operator command's file name, beside bluegreen-pipeline on the host. */
export const CLI_BUNDLE_NAME = 'ec2-bluegreen.mjs';

/**
 * The oldest Node.js the bundle runs on: this project's own (package.json engines). The fleet's
 * Jenkins runs it on Amazon Linux 2023's Node.js 22 (assets/userdata/bootstrap.sh).
 */
export const CLI_BUNDLE_TARGET = 'node20';

/** What the bundle runs: the command as a process, as bin/ec2-bluegreen.mjs runs it. */
const ENTRY_NAME = 'ec2-bluegreen-entry.ts';
const ENTRY = "import { runProcess } from './cli/process.ts';\nawait runProcess(process.argv.slice(2));\n";

/** Bundled CommonJS modules (parts of the SDK) may `require` Node's own modules. */
const BANNER = "import { createRequire as bundleCreateRequire } from 'node:module';\nconst require = bundleCreateRequire(import.meta.url);";

interface BundleManifest {
  /** What else decides the output: the build options and the esbuild version. */
  readonly recipe: string;
  /** Every file the bundle was built from, project-relative, with its sha256. */
  readonly inputs: Readonly<Record<string, string>>;
}

/** Built (or found current) once per process: a synth makes one, a test run makes many. */
const built = new Map<string, string>();

/**
 * Bundles the operator command into `outDir/ec2-bluegreen.mjs` and returns its path. Reuses the
 * file when every input it was built from is unchanged (`manifest.json` beside it lists them
 * with their hashes), so a synth bundles only after the command, the SDK or the lock file changed.
 */
export function cliBundle(outDir: string = projectPath('.build', 'cli-bundle')): string {
  const out = path.join(outDir, CLI_BUNDLE_NAME);
  if (built.has(out)) return out;
  const manifestFile = path.join(outDir, 'manifest.json');
  const recipe = bundleRecipe();
  if (fs.existsSync(out) && isCurrent(manifestFile, recipe)) {
    built.set(out, out);
    return out;
  }
  fs.mkdirSync(outDir, { recursive: true });
  // esbuild only when it bundles: a synth that finds the bundle current does not load it.
  const esbuild = createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
  // Written beside the final file and renamed, so a reader never sees half a bundle.
  const partial = path.join(outDir, `.${CLI_BUNDLE_NAME}.${process.pid}`);
  const result = esbuild.buildSync({
    stdin: { contents: ENTRY, resolveDir: projectPath(), sourcefile: ENTRY_NAME, loader: 'ts' },
    // Input paths in the metafile are then project-relative.
    absWorkingDir: projectPath(),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: CLI_BUNDLE_TARGET,
    outfile: partial,
    banner: { js: BANNER },
    // Readable stack traces on the host; the SDK's licence notices at the end.
    minify: false,
    legalComments: 'eof',
    metafile: true,
    logLevel: 'silent',
  });
  const inputs = Object.fromEntries(
    Object.keys(result.metafile!.inputs)
      // The entry is text here (in the recipe), not a file.
      .filter((input) => input !== ENTRY_NAME)
      .sort()
      .map((input) => [input, fileHash(projectPath(input))]),
  );
  fs.renameSync(partial, out);
  const manifest: BundleManifest = { recipe, inputs };
  fs.writeFileSync(manifestFile, `${JSON.stringify(manifest, null, 1)}\n`);
  built.set(out, out);
  return out;
}

/**
 * The Jenkins tools directory an asset zips: the tree of `jenkinsDir` and the bundled command,
 * staged under `.build/jenkins-tools/HASH/` (HASH of both, the tree hashed as the engine bundle
 * is), so that the same tools are the same directory and the asset's hash changes exactly when
 * they do.
 */
export function jenkinsToolsDir(jenkinsDir: string = projectPath('assets', 'jenkins'), buildDir: string = projectPath('.build', 'jenkins-tools')): string {
  const bundle = cliBundle();
  if (fs.existsSync(path.join(jenkinsDir, CLI_BUNDLE_NAME))) {
    throw new Error(`${jenkinsDir} holds a ${CLI_BUNDLE_NAME} of its own; the Jenkins tools add the bundled operator command under that name. Rename or remove it.`);
  }
  const hash = createHash('sha256').update(engineTreeHash(jenkinsDir)).update('\0').update(fileHash(bundle)).digest('hex');
  const dir = path.join(buildDir, hash.slice(0, 20));
  if (fs.existsSync(dir)) return dir;
  pruneStaged(buildDir);
  const partial = `${dir}.${process.pid}`;
  fs.rmSync(partial, { recursive: true, force: true });
  // cpSync keeps the modes: the scripts stay executable.
  fs.cpSync(jenkinsDir, partial, { recursive: true });
  fs.cpSync(bundle, path.join(partial, CLI_BUNDLE_NAME));
  try {
    fs.renameSync(partial, dir);
  } catch (error) {
    // Another process staged the same tools meanwhile: same content, keep theirs.
    fs.rmSync(partial, { recursive: true, force: true });
    if (!fs.existsSync(dir)) throw error;
  }
  return dir;
}

/** Staged tools a past synth left, older than an hour (a synth copies them into cdk.out as it runs). */
function pruneStaged(buildDir: string): void {
  if (!fs.existsSync(buildDir)) return;
  const cutoff = Date.now() - 60 * 60 * 1000;
  for (const entry of fs.readdirSync(buildDir, { withFileTypes: true })) {
    const stale = path.join(buildDir, entry.name);
    if (entry.isDirectory() && fs.statSync(stale).mtimeMs < cutoff) fs.rmSync(stale, { recursive: true, force: true });
  }
}

function bundleRecipe(): string {
  const esbuildVersion = (JSON.parse(fs.readFileSync(projectPath('node_modules', 'esbuild', 'package.json'), 'utf8')) as { version: string }).version;
  // The lock file: a changed dependency tree can resolve an import elsewhere without changing a file the bundle read.
  return JSON.stringify({ esbuildVersion, ENTRY, BANNER, CLI_BUNDLE_TARGET, lock: fileHash(projectPath('package-lock.json')) });
}

function isCurrent(manifestFile: string, recipe: string): boolean {
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as BundleManifest;
  } catch {
    return false;
  }
  if (manifest.recipe !== recipe) return false;
  return Object.entries(manifest.inputs).every(([input, sha256]) => {
    const file = projectPath(input);
    return fs.existsSync(file) && fileHash(file) === sha256;
  });
}

function fileHash(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}
