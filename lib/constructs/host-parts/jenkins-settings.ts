/**
 * The names Jenkins' settings are passed under, from the stack to the host: the keys of the
 * settings parameter (read by `assets/jenkins/configure-jenkins` and the first boot), its admin
 * user, where its tools live and how its job is named. Plain values, no resources.
 */

/** Jenkins' one user, created by its configuration as code with the stack's generated password. */
export const JENKINS_ADMIN_USER = 'admin';

/** Where a host installs `assets/jenkins/` (configure-jenkins, bluegreen-pipeline, the templates). */
export const JENKINS_TOOLS_DIR = '/usr/local/lib/bluegreen-jenkins';

/** How often the job looks for new commits when GitHub cannot reach Jenkins (jenkins.yaml.tmpl). */
export const JENKINS_POLL_MINUTES = 2;

/**
 * Keys of the Jenkins settings parameter, read on the host by `assets/jenkins/configure-jenkins`
 * (its SETTING_KEYS) and by the first boot (`bundleUri`). Values name secrets, never hold them.
 */
export const JENKINS_SETTINGS_KEYS = [
  'bundleUri',
  'adminUser',
  'adminPasswordSecret',
  'githubTokenSecret',
  'jobName',
  'repositoryUrl',
  'repositoryBranch',
  'jenkinsPort',
  'jenkinsReachedThrough',
  /** Jenkins' heap and whole footprint, the build's heap and allowance, in MiB (lib/memory-budget.ts). */
  'jenkinsHeapMiB',
  'jenkinsMemoryMiB',
  'buildHeapMiB',
  'buildMemoryMiB',
] as const;
export type JenkinsSettings = Record<(typeof JENKINS_SETTINGS_KEYS)[number], string>;

/**
 * Settings only Jenkins on its own instance (fleet mode) has: its pipeline sends the deploy
 * document to the fleet instead of running `bluegreen` locally. Absent on the single host,
 * where the pipeline deploys on the host itself.
 */
export const JENKINS_FLEET_SETTINGS_KEYS = [
  /** `fleet`. */
  'deployMode',
  'region',
  'documentName',
  /** `tag:KEY=VALUE`. */
  'fleetTarget',
  'maxConcurrency',
  'releaseParameter',
  /** `s3://BUCKET/PREFIX/` for the jars the pipeline uploads. */
  'uploadLocation',
  'outputLogGroup',
] as const;
export type JenkinsFleetSettings = Record<(typeof JENKINS_FLEET_SETTINGS_KEYS)[number], string>;

/**
 * The job's name: the repository's name (`shop` for `git@github.com:acme/shop.git`), in the
 * characters a Jenkins item name and the settings parameter accept.
 */
export function jenkinsJobName(repositoryUrl: string): string {
  const last = repositoryUrl.replace(/\/+$/, '').split(/[/:]/).pop() ?? '';
  const name = last.replace(/\.git$/, '').replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[.-]+/, '');
  return name === '' ? 'app' : name;
}
