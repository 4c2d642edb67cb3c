/**
 * Who on a host may reach the instance metadata service, and so use the instance role: root, and
 * the users each kind of host names here. The first boot downloads the guard
 * (`assets/userdata/imds-guard.sh`) and installs it; it rejects everyone else's connections to the
 * metadata service on this and every later boot.
 */
import { Validations } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import type { Construct } from 'constructs';
import { projectPath } from '../paths.js';
import { grantAssetRead } from './host-parts/role.js';

/** The user the app slots run as (SLOT_USER in assets/instance/lib/slots.sh). */
export const APP_USER = 'bluegreen';

/** The Jenkins controller's user, which the Jenkins package creates (JENKINS_USER in assets/jenkins/configure-jenkins). */
export const JENKINS_USER = 'jenkins';

/** What the first boot is told about the guard (placeholders METADATA_GUARD_URI and METADATA_USERS). */
export interface MetadataGuardSettings {
  /** `s3://…` of the guard script. */
  readonly uri: string;
  /** Users besides root that may reach the metadata service; each a plain user name. */
  readonly users: readonly string[];
}

/** Users of an app host (single or fleet) that may reach the metadata service besides root. */
export function appHostMetadataUsers(appInstanceRoleAccess: boolean): readonly string[] {
  return appInstanceRoleAccess ? [APP_USER] : [];
}

/** The build agent's user, which runs every build (AGENT_USER in assets/jenkins/configure-jenkins). */
export const JENKINS_AGENT_USER = 'jenkins-agent';

/**
 * Users of the fleet's Jenkins host besides root: none. Builds (user jenkins-agent) deploy to the
 * fleet through a root-owned command they may run with sudo (bluegreen-fleet-deploy), so neither
 * they nor the controller, which calls no AWS service, need the role.
 */
export const JENKINS_HOST_METADATA_USERS: readonly string[] = [];

const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

/**
 * The guard script as an asset (id `MetadataGuard`) that `role` may read, and the settings the
 * first boot needs to install it for `users`.
 */
export function newMetadataGuard(scope: Construct, role: iam.IRole, users: readonly string[]): MetadataGuardSettings {
  const bad = users.find((user) => !USER_NAME.test(user));
  if (bad !== undefined) {
    throw new Error(`${scope.node.path}: '${bad}' is not a user name the metadata guard can allow (lower-case letters, digits, _ and -)`);
  }
  const asset = new s3assets.Asset(scope, 'MetadataGuard', { path: projectPath('assets', 'userdata', 'imds-guard.sh') });
  grantAssetRead(role, asset);
  return { uri: asset.s3ObjectUrl, users };
}

/**
 * Says at synth, as a warning on `scope`, that the app may use the instance role and what that
 * gives whoever takes the app over: `exposes` lists it, in words.
 */
export function warnAppInstanceRoleAccess(scope: Construct, exposes: readonly string[]): void {
  Validations.of(scope).addWarning(
    'ec2-bluegreen:appInstanceRoleAccess',
    `appInstanceRoleAccess is true: the app (user '${APP_USER}', which serves the internet) may get the instance role's ` +
      `credentials from the metadata service. Whoever takes over the app can then do all the role may: ${exposes.join('; ')}. ` +
      'Leave appInstanceRoleAccess unset unless the app itself calls AWS.',
  );
}
