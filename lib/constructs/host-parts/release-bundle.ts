/**
 * What an app host deploys on its first boot: the engine bundle, the first artifact, and the
 * parameter that names them. Used by the single host and the fleet's app hosts.
 */
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import type { Construct } from 'constructs';
import type { ArtifactFile } from '../../artifact.js';
import { engineTreeHash } from '../../engine-bundle.js';
import { projectPath } from '../../paths.js';
import { grantAssetRead } from './role.js';

/** The engine bundle, the first artifact, and the parameter naming them, which the first boot reads. */
export interface ReleaseBundle {
  /** The zipped `assets/instance/` tree. */
  readonly engineAsset: s3assets.Asset;
  /** Content hash of that tree (lib/engine-bundle.ts), which the deploy document checks. */
  readonly engineHash: string;
  /** The jar deployed on first boot. */
  readonly artifactAsset: s3assets.Asset;
  /** Holds the engine and first-release locations the first boot reads. */
  readonly firstReleaseParameter: ssm.StringParameter;
}

/** Creates the engine and artifact assets (ids `EngineBundle`, `Artifact`) and `FirstRelease`, readable by `role`. */
export function newReleaseBundle(
  scope: Construct,
  role: iam.IRole,
  props: {
    readonly engineDir?: string;
    readonly artifact: ArtifactFile;
    /** Whole seconds, already checked by the construct (`health-timeout.ts`). */
    readonly healthTimeoutSeconds: number;
    readonly tlsCertificateSecret?: secretsmanager.ISecret;
    /** Engine configuration lines (`BLUEGREEN_KEY=value`, lib/memory-budget.ts) the first boot adds to the host's. */
    readonly engineSettings: readonly string[];
    readonly description: string;
  },
): ReleaseBundle {
  const engineDir = props.engineDir ?? projectPath('assets', 'instance');
  const engineAsset = new s3assets.Asset(scope, 'EngineBundle', { path: engineDir });
  const artifactAsset = new s3assets.Asset(scope, 'Artifact', { path: props.artifact.path });
  grantAssetRead(role, engineAsset);
  grantAssetRead(role, artifactAsset);
  props.tlsCertificateSecret?.grantRead(role);
  const firstReleaseParameter = new ssm.StringParameter(scope, 'FirstRelease', {
    description: props.description,
    stringValue: [
      `engineUri=${engineAsset.s3ObjectUrl}`,
      `artifactUri=${artifactAsset.s3ObjectUrl}`,
      `sha256=${props.artifact.sha256}`,
      `version=${props.artifact.version}`,
      `healthTimeout=${props.healthTimeoutSeconds}`,
      ...(props.tlsCertificateSecret === undefined ? [] : [`tlsSecret=${props.tlsCertificateSecret.secretArn}`]),
      ...props.engineSettings,
    ].join('\n'),
  });
  firstReleaseParameter.grantRead(role);
  return { engineAsset, engineHash: engineTreeHash(engineDir), artifactAsset, firstReleaseParameter };
}
