/**
 * What to deploy, read from the custom resource's properties, and the SendCommand request that
 * runs the deploy document for it. Pure.
 */
import type { SendCommandCommandInput } from '@aws-sdk/client-ssm';
import { DEPLOYMENT_PROPERTIES, DOCUMENT_PARAM_PATTERNS, DOCUMENT_PARAMS } from '../../lib/contract.js';

/** One deploy: which jar goes to which instance, through which document. */
export interface DeploymentRequest {
  readonly instanceId: string;
  readonly documentName: string;
  readonly artifactUri: string;
  readonly sha256: string;
  /** @default - the host labels the release with the start of its sha256 */
  readonly version?: string;
  /** @default - the document's default */
  readonly healthTimeoutSeconds?: number;
}

const INSTANCE_ID_PATTERN = /^(i|mi)-[0-9a-f]{8,17}$/;
const DOCUMENT_NAME_PATTERN = /^[a-zA-Z0-9_.-]{3,128}$/;
/** SendCommand's limit on `Comment`. */
export const COMMENT_MAX_CHARS = 100;

/**
 * Reads and checks the resource properties (CloudFormation passes every value as a string).
 * Throws one error listing every problem, before anything is sent: a value the document's
 * `allowedPattern` would refuse fails here with the property's name instead of in SSM.
 */
export function readDeploymentRequest(properties: Readonly<Record<string, unknown>> | undefined): DeploymentRequest {
  const props = properties ?? {};
  const problems: string[] = [];
  const text = (name: string, required: boolean, valid: (value: string) => boolean, expected: string): string | undefined => {
    const raw = props[name];
    if (raw === undefined || raw === null || raw === '') {
      if (required) problems.push(`${name} is missing (${expected})`);
      return undefined;
    }
    const value = String(raw);
    if (!valid(value)) problems.push(`${name} = ${JSON.stringify(value)} is not ${expected}`);
    return value;
  };
  const matches = (pattern: string) => (value: string) => new RegExp(pattern).test(value);
  const P = DEPLOYMENT_PROPERTIES;

  const instanceId = text(P.instanceId, true, (v) => INSTANCE_ID_PATTERN.test(v), 'an instance id such as i-0123456789abcdef0');
  const documentName = text(P.documentName, true, (v) => DOCUMENT_NAME_PATTERN.test(v), 'an SSM document name');
  const artifactUri = text(
    P.artifactUri,
    true,
    (v) => v !== '' && matches(DOCUMENT_PARAM_PATTERNS.artifactUri)(v),
    'an s3://BUCKET/KEY, https:// URL or absolute path that the document accepts',
  );
  const sha256 = text(P.sha256, true, (v) => v !== '' && matches(DOCUMENT_PARAM_PATTERNS.sha256)(v), '64 lower-case hex digits');
  const version = text(P.version, false, matches(DOCUMENT_PARAM_PATTERNS.version), 'a version label (letters, digits, . _ + -, up to 64)');
  const healthTimeout = text(P.healthTimeout, false, matches(DOCUMENT_PARAM_PATTERNS.healthTimeout), 'a whole number of seconds from 1 to 999');

  if (problems.length > 0) {
    throw new Error(`the deployment's properties are not usable: ${problems.join('; ')}. Nothing was sent to the instance.`);
  }
  return {
    instanceId: instanceId!,
    documentName: documentName!,
    artifactUri: artifactUri!,
    sha256: sha256!,
    version,
    healthTimeoutSeconds: healthTimeout === undefined ? undefined : Number(healthTimeout),
  };
}

/** Why this command was sent, as the Run Command console and `list-commands` show it. */
export interface CommandOrigin {
  readonly requestType: 'Create' | 'Update';
  readonly logicalResourceId: string;
}

/** Where and how a document run is sent: the same for the custom resource and the operator command. */
export interface DocumentRun {
  readonly documentName: string;
  readonly instanceId: string;
  /** SendCommand's `TimeoutSeconds`: how long the command may wait for the instance to pick it up. */
  readonly deliveryTimeoutSeconds: number;
  /** Stream the command's output to this CloudWatch log group. @default - output stays in SSM */
  readonly outputLogGroupName?: string;
  /** Why it was sent, as the Run Command console shows it (cut to SSM's limit). */
  readonly comment: string;
}

/** The SendCommand request that runs the document with these parameters on one instance. */
export function documentRunInput(run: DocumentRun, parameters: Record<string, string[]>): SendCommandCommandInput {
  return {
    DocumentName: run.documentName,
    // The version the stack just wrote: a stack update that changes the script and the jar
    // together deploys the jar with the new script.
    DocumentVersion: '$LATEST',
    InstanceIds: [run.instanceId],
    Parameters: parameters,
    TimeoutSeconds: Math.round(run.deliveryTimeoutSeconds),
    Comment: run.comment.length > COMMENT_MAX_CHARS ? `${run.comment.slice(0, COMMENT_MAX_CHARS - 1)}…` : run.comment,
    ...(run.outputLogGroupName === undefined
      ? {}
      : { CloudWatchOutputConfig: { CloudWatchOutputEnabled: true, CloudWatchLogGroupName: run.outputLogGroupName } }),
  };
}

/** The document's parameters for `action=deploy` of this artifact. */
export function deployParameters(
  request: Pick<DeploymentRequest, 'artifactUri' | 'sha256' | 'version' | 'healthTimeoutSeconds'>,
): Record<string, string[]> {
  const parameters: Record<string, string[]> = {
    [DOCUMENT_PARAMS.action]: ['deploy'],
    [DOCUMENT_PARAMS.artifactUri]: [request.artifactUri],
    [DOCUMENT_PARAMS.sha256]: [request.sha256],
    [DOCUMENT_PARAMS.version]: [request.version ?? ''],
  };
  if (request.healthTimeoutSeconds !== undefined) {
    parameters[DOCUMENT_PARAMS.healthTimeout] = [String(request.healthTimeoutSeconds)];
  }
  return parameters;
}

/** The custom resource's SendCommand request: the document with `action=deploy`, on this one instance. */
export function sendCommandInput(
  request: DeploymentRequest,
  settings: { readonly deliveryTimeoutSeconds: number; readonly outputLogGroupName?: string },
  origin: CommandOrigin,
): SendCommandCommandInput {
  return documentRunInput(
    {
      documentName: request.documentName,
      instanceId: request.instanceId,
      deliveryTimeoutSeconds: settings.deliveryTimeoutSeconds,
      outputLogGroupName: settings.outputLogGroupName,
      comment: `CloudFormation ${origin.requestType} ${origin.logicalResourceId}: deploy ${request.version ?? request.sha256.slice(0, 12)}`,
    },
    deployParameters(request),
  );
}
