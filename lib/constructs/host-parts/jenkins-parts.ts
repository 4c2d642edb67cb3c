/**
 * The resources Jenkins is configured from, wherever it runs (on the single host, or on its own
 * instance beside the fleet): its bundle, its generated admin password and its settings parameter.
 */
import { RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import type { Construct } from 'constructs';
import { jenkinsMemorySettings, type MemoryBudget } from '../../memory-budget.js';
import { projectPath } from '../../paths.js';
import {
  JENKINS_ADMIN_USER,
  JENKINS_FLEET_SETTINGS_KEYS,
  JENKINS_SETTINGS_KEYS,
  jenkinsJobName,
  type JenkinsFleetSettings,
  type JenkinsSettings,
} from './jenkins-settings.js';
import { HOST_PORTS } from './ports.js';
import { grantAssetRead } from './role.js';

/** The pipeline job Jenkins runs for the app's repository. */
export interface JenkinsJobSettings {
  /** The app's repository: `https://…`, `git@host:owner/repo` or `ssh://…` (checked by lib/config.ts). */
  readonly repositoryUrl: string;
  /** The branch whose pushes are built and deployed. */
  readonly branch: string;
}

/** Jenkins' job, GitHub access and bundle. */
export interface JenkinsPartsProps {
  /**
   * The pipeline job: builds the repository's Jenkinsfile on each push to the branch.
   * @default - no job; Jenkins runs with its admin user only
   */
  readonly job?: JenkinsJobSettings;

  /**
   * An existing secret whose value is a GitHub token: Jenkins checks out over HTTPS with it and,
   * when GitHub can reach Jenkins, registers the push webhook. The instance may read this secret.
   * @default - no GitHub credentials: a public repository, or an SSH deploy key set up by hand
   */
  readonly githubTokenSecret?: secretsmanager.ISecret;

  /**
   * The Jenkins tree (JCasC template, plugin list, sudoers rule, scripts), shipped as one zipped asset.
   * @default - `assets/jenkins/` from this repository
   */
  readonly jenkinsDir?: string;
}

/** What the first boot configures Jenkins from. */
export interface JenkinsParts {
  /** The zipped `assets/jenkins/` tree. */
  readonly jenkinsAsset: s3assets.Asset;
  /** Generated password of Jenkins' admin user; the instance may read it, nothing else in the stack does. */
  readonly adminPassword: secretsmanager.Secret;
  /** What the first boot configures Jenkins with (KEY=VALUE lines, no secret values). */
  readonly settingsParameter: ssm.StringParameter;
  /** The pipeline job's name, when there is a job. */
  readonly jobName?: string;
  /** Whether GitHub (and people) reach Jenkins over the network, or only through a port forward. */
  readonly reachedThrough: 'network' | 'port-forward';
}

/**
 * Jenkins' bundle (`JenkinsBundle`), admin password (`JenkinsAdminPassword`) and settings
 * (`JenkinsSettings`), readable by `role`. `fleet` adds the settings of a pipeline that deploys
 * through the SSM document.
 */
export function newJenkinsParts(
  scope: Construct,
  role: iam.IRole,
  props: JenkinsPartsProps & {
    readonly jenkinsAllowedCidrs?: readonly string[];
    readonly fleet?: JenkinsFleetSettings;
    /** The host's memory budget: Jenkins' heap and the build's allowance come from it. */
    readonly memory: MemoryBudget;
    readonly passwordDescription: string;
    readonly settingsDescription: string;
  },
): JenkinsParts {
  // Jenkins serves plain HTTP: opened to a network, its admin login would cross it unencrypted.
  // lib/config.ts refuses the context keys; this refuses the same for code that builds the
  // constructs itself.
  if ((props.jenkinsAllowedCidrs ?? []).length > 0) {
    throw new Error(
      `jenkinsAllowedCidrs = ${JSON.stringify(props.jenkinsAllowedCidrs)}: Jenkins serves plain HTTP, so opening it to a ` +
        'network would send its admin login unencrypted; nothing was built. Leave jenkinsAllowedCidrs empty and reach ' +
        'Jenkins through the port-forward command of the JenkinsAccess output (AWS-StartPortForwardingSession).',
    );
  }
  const reachedThrough = 'port-forward';
  const jobName = props.job === undefined ? undefined : jenkinsJobName(props.job.repositoryUrl);
  const jenkinsAsset = new s3assets.Asset(scope, 'JenkinsBundle', { path: props.jenkinsDir ?? projectPath('assets', 'jenkins') });
  grantAssetRead(role, jenkinsAsset);
  const adminPassword = new secretsmanager.Secret(scope, 'JenkinsAdminPassword', {
    description: props.passwordDescription,
    // Letters and digits only: nothing in it needs escaping in JCasC or in curl's config syntax.
    generateSecretString: { passwordLength: 32, excludePunctuation: true },
    // The password is only good for this host's Jenkins, which the stack also deletes.
    removalPolicy: RemovalPolicy.DESTROY,
  });
  adminPassword.grantRead(role);
  Validations.of(adminPassword).acknowledge({
    id: 'AwsSolutions-SMG4',
    reason:
      "Jenkins reads its admin password into its own user database at start (JCasC), so a rotation Lambda " +
      'could not change the live password; rotate by putting a new value and restarting Jenkins ' +
      '(or replacing the host), which re-reads it.',
  });
  const githubTokenSecret = props.githubTokenSecret;
  if (githubTokenSecret !== undefined) {
    githubTokenSecret.grantRead(role);
    acknowledgeSecretNameWildcard(role, githubTokenSecret);
  }
  const settings: JenkinsSettings = {
    bundleUri: jenkinsAsset.s3ObjectUrl,
    adminUser: JENKINS_ADMIN_USER,
    adminPasswordSecret: adminPassword.secretArn,
    githubTokenSecret: githubTokenSecret?.secretArn ?? '',
    jobName: jobName ?? '',
    repositoryUrl: props.job?.repositoryUrl ?? '',
    repositoryBranch: props.job?.branch ?? '',
    jenkinsPort: String(HOST_PORTS.jenkins),
    jenkinsReachedThrough: reachedThrough,
    ...jenkinsMemorySettings(props.memory),
  };
  const lines = JENKINS_SETTINGS_KEYS.map((key) => `${key}=${settings[key]}`);
  if (props.fleet !== undefined) lines.push(...JENKINS_FLEET_SETTINGS_KEYS.map((key) => `${key}=${props.fleet![key]}`));
  const settingsParameter = new ssm.StringParameter(scope, 'JenkinsSettings', {
    description: props.settingsDescription,
    stringValue: lines.join('\n'),
  });
  settingsParameter.grantRead(role);
  return { jenkinsAsset, adminPassword, settingsParameter, jobName, reachedThrough };
}

/**
 * A secret imported by name is granted as `NAME-??????` (Secrets Manager appends six random
 * characters to the ARN); that wildcard matches this one secret's ARN and nothing else.
 */
function acknowledgeSecretNameWildcard(role: iam.IRole, secret: secretsmanager.ISecret): void {
  if (secret.secretFullArn !== undefined) return;
  const partialArn = renderArnForFinding(Stack.of(role).resolve(secret.secretArn));
  Validations.of(role).acknowledge({
    id: `AwsSolutions-IAM5[Resource::${partialArn}-??????]`,
    reason:
      "The GitHub token secret is named, not given by its full ARN; Secrets Manager ends every secret's ARN " +
      'with six random characters, which the policy matches with ??????. It matches that one secret only.',
  });
}

/** A CloudFormation value as cdk-nag names it in a finding: `Ref`s (pseudo parameters too) as `<Name>`, joins joined. */
export function renderArnForFinding(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    if ('Ref' in object) return `<${String(object.Ref)}>`;
    if ('Fn::Join' in object) {
      const [separator, parts] = object['Fn::Join'] as [string, unknown[]];
      return parts.map(renderArnForFinding).join(separator);
    }
  }
  throw new Error(`cannot name the IAM finding for ${JSON.stringify(value)}`);
}
