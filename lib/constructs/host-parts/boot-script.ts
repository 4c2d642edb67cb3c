/**
 * The first-boot script every host runs (`assets/userdata/bootstrap.sh`), rendered into user
 * data with the placeholders of the kind of host it boots.
 */
import { Aws } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { HOST_PATHS } from '../../contract.js';
import { projectPath } from '../../paths.js';
import { renderScript } from '../../template.js';
import { JENKINS_TOOLS_DIR } from './jenkins-settings.js';
import { HOST_PORTS } from './ports.js';
import type { MetadataGuardSettings } from '../metadata-guard.js';

/** What the first boot does: the single host, an app host of the fleet, or the fleet's Jenkins. */
export type HostRole = 'single' | 'fleet' | 'jenkins';

const USER_DATA_SHEBANG = '#!/bin/bash';

/** Empty Linux user data with the first-boot script's shebang; `bootScript` fills it. */
export function emptyUserData(): ec2.UserData {
  return ec2.UserData.forLinux({ shebang: USER_DATA_SHEBANG });
}

/** What the first boot of one kind of host is told; every other placeholder is the same for all. */
export interface BootSettings {
  readonly role: HostRole;
  /** The logical id cfn-signal reports to: the instance, or the Auto Scaling group. */
  readonly signalResource: string;
  /** @default '' (the fleet's Jenkins deploys nothing) */
  readonly firstReleaseParameter?: string;
  /** @default '' (no Jenkins on this host) */
  readonly jenkinsSettingsParameter?: string;
  /** @default '' (not a fleet host) */
  readonly fleetReleaseParameter?: string;
  /** The guard that lets only root and its users reach the metadata service (`newMetadataGuard`). */
  readonly metadataGuard: MetadataGuardSettings;
}

/**
 * The first-boot script (`path`, default `assets/userdata/bootstrap.sh`) with its placeholders
 * filled for `boot`, without its shebang: the body of `emptyUserData()`.
 */
export function bootScript(path: string | undefined, boot: BootSettings, owner: string): string {
  const script = renderScript(path ?? projectPath('assets', 'userdata', 'bootstrap.sh'), {
    STACK_NAME: Aws.STACK_NAME,
    REGION: Aws.REGION,
    SIGNAL_RESOURCE: boot.signalResource,
    FIRST_RELEASE_PARAMETER: boot.firstReleaseParameter ?? '',
    ENGINE_DIR: HOST_PATHS.libDir,
    ENGINE_COMMAND: HOST_PATHS.command,
    ENGINE_CONFIG: HOST_PATHS.configFile,
    SLOT_UNIT: HOST_PATHS.slotUnit,
    SITE_PORT: String(HOST_PORTS.http),
    JENKINS_SETTINGS_PARAMETER: boot.jenkinsSettingsParameter ?? '',
    JENKINS_TOOLS_DIR,
    HOST_ROLE: boot.role,
    FLEET_RELEASE_PARAMETER: boot.fleetReleaseParameter ?? '',
    METADATA_GUARD_URI: boot.metadataGuard.uri,
    METADATA_USERS: boot.metadataGuard.users.join(' '),
  });
  if (!script.startsWith(`${USER_DATA_SHEBANG}\n`)) {
    throw new Error(`${owner}: the user-data script must start with ${USER_DATA_SHEBANG}`);
  }
  return withoutComments(script.slice(USER_DATA_SHEBANG.length + 1));
}

/**
 * EC2 caps user data at 16 KB: the comments stay in the source, the instance gets the code.
 * Each comment line becomes an empty line, so a line number in the boot's error still points
 * into the source; shellcheck directives stay. The script has no here-document or multi-line
 * string whose lines could start with `#`.
 */
function withoutComments(script: string): string {
  return script
    .split('\n')
    .map((line) => (/^\s*#/.test(line) && !/^\s*# shellcheck /.test(line) ? '' : line))
    .join('\n');
}
