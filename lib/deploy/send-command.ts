/**
 * What to deploy, read from the custom resource's properties, and the SendCommand request that
 * runs the deploy document for it. Pure.
 */
import type { SendCommandCommandInput } from '@aws-sdk/client-ssm';
import { defaultReleaseLabel, DEPLOYMENT_PROPERTIES, DOCUMENT_PARAM_PATTERNS, DOCUMENT_PARAMS, MAX_CONCURRENCY_PATTERN } from '../contract.js';
import { redactCredentials } from '../redact.js';

/** A fleet: every instance carrying a tag, swapped `maxConcurrency` at a time, stopping at the first failure. */
export interface FleetTarget {
  readonly tagKey: string;
  readonly tagValue: string;
  /** SSM `MaxConcurrency`: a number of hosts or a percentage. */
  readonly maxConcurrency: string;
}

/** A fleet deploy also records the release once every host took it. */
export interface FleetDeployTarget extends FleetTarget {
  /** The SSM parameter new hosts read at boot. */
  readonly releaseParameterName: string;
}

/** One deploy: which jar goes to which instance (or fleet), through which document. */
export interface DeploymentRequest {
  /** The one instance; absent for a fleet. */
  readonly instanceId?: string;
  /** The fleet; absent for one instance. */
  readonly fleet?: FleetDeployTarget;
  readonly documentName: string;
  readonly artifactUri: string;
  readonly sha256: string;
  /** @default - the host labels the release with the start of its sha256 */
  readonly version?: string;
  /** @default - the document's default */
  readonly healthTimeoutSeconds?: number;
  /**
   * The stack's engine bundle, which the document installs first where a host runs another (the
   * document accepts no other). @default - the document leaves the engine alone
   */
  readonly engineUri?: string;
}

const INSTANCE_ID_PATTERN = /^(i|mi)-[0-9a-f]{8,17}$/;
/** What SSM accepts as a tag key and value in `Targets` (no blanks here: the CLI splits on them). */
const TAG_PATTERN = /^[A-Za-z0-9_.:/=+@-]{1,128}$/;
const PARAMETER_NAME_PATTERN = /^\/?[A-Za-z0-9_.\/-]{1,1011}$/;
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

  // A fleet is named by its tag; anything else is one instance.
  const isFleet = props[P.targetTagKey] !== undefined && props[P.targetTagKey] !== '';
  const instanceId = isFleet
    ? undefined
    : text(P.instanceId, true, (v) => INSTANCE_ID_PATTERN.test(v), `an instance id such as i-0123456789abcdef0, or ${P.targetTagKey} and ${P.targetTagValue} for a fleet`);
  if (isFleet && props[P.instanceId] !== undefined && props[P.instanceId] !== '') {
    problems.push(`${P.instanceId} and ${P.targetTagKey} are both set: name one instance or one fleet, not both`);
  }
  const fleet = isFleet
    ? {
        tagKey: text(P.targetTagKey, true, (v) => TAG_PATTERN.test(v), 'a tag key'),
        tagValue: text(P.targetTagValue, true, (v) => TAG_PATTERN.test(v), 'a tag value'),
        maxConcurrency: text(P.maxConcurrency, false, (v) => new RegExp(MAX_CONCURRENCY_PATTERN).test(v), 'a number of hosts (1-9999) or a percentage (1%-100%)') ?? '1',
        releaseParameterName: text(P.releaseParameterName, true, (v) => PARAMETER_NAME_PATTERN.test(v), 'an SSM parameter name'),
      }
    : undefined;
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
  const engineUri = text(P.engineUri, false, matches(DOCUMENT_PARAM_PATTERNS.engineUri), "the s3://BUCKET/KEY of the stack's engine bundle");

  if (problems.length > 0) {
    // The reason lands in CloudFormation's events: a value echoed there keeps no credential.
    throw new Error(redactCredentials(`the deployment's properties are not usable: ${problems.join('; ')}. Nothing was sent to the instance.`));
  }
  return {
    ...(fleet === undefined ? { instanceId: instanceId! } : { fleet: fleet as FleetDeployTarget }),
    documentName: documentName!,
    artifactUri: artifactUri!,
    sha256: sha256!,
    version,
    healthTimeoutSeconds: healthTimeout === undefined ? undefined : Number(healthTimeout),
    ...(engineUri === undefined ? {} : { engineUri }),
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
  /** One instance, or several (a catch-up of fleet hosts); exactly one of `instanceIds` and `fleet`. */
  readonly instanceIds?: readonly string[];
  readonly fleet?: FleetTarget;
  /** SendCommand's `TimeoutSeconds`: how long the command may wait for the instance to pick it up. */
  readonly deliveryTimeoutSeconds: number;
  /** Stream the command's output to this CloudWatch log group. @default - output stays in SSM */
  readonly outputLogGroupName?: string;
  /** Why it was sent, as the Run Command console shows it (cut to SSM's limit). */
  readonly comment: string;
}

/**
 * The SendCommand request that runs the document with these parameters on the instances, or on
 * the fleet by its tag: SSM resolves the tag when it sends, swaps `maxConcurrency` hosts at a
 * time, and with `MaxErrors` 0 sends to no further host after the first failure.
 */
export function documentRunInput(run: DocumentRun, parameters: Record<string, string[]>): SendCommandCommandInput {
  const where: Partial<SendCommandCommandInput> =
    run.fleet === undefined
      ? { InstanceIds: [...(run.instanceIds ?? [])] }
      : {
          Targets: [{ Key: `tag:${run.fleet.tagKey}`, Values: [run.fleet.tagValue] }],
          MaxConcurrency: run.fleet.maxConcurrency,
          MaxErrors: '0',
        };
  return {
    DocumentName: run.documentName,
    // The version the stack just wrote: a stack update that changes the script and the jar
    // together deploys the jar with the new script.
    DocumentVersion: '$LATEST',
    ...where,
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
  request: Pick<DeploymentRequest, 'artifactUri' | 'sha256' | 'version' | 'healthTimeoutSeconds' | 'engineUri'>,
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
  if (request.engineUri !== undefined) parameters[DOCUMENT_PARAMS.engineUri] = [request.engineUri];
  return parameters;
}

/**
 * The custom resource's SendCommand request: the document with `action=deploy`, on the one
 * instance or the fleet. With `catchUp`, on these fleet hosts only: they joined the fleet after
 * the roll-out `catchUp.commandId` was sent, so SSM did not resolve them as its targets.
 */
export function sendCommandInput(
  request: DeploymentRequest,
  settings: { readonly deliveryTimeoutSeconds: number; readonly outputLogGroupName?: string },
  origin: CommandOrigin,
  catchUp?: { readonly commandId: string; readonly instanceIds: readonly string[] },
): SendCommandCommandInput {
  const release = request.version ?? defaultReleaseLabel(request.sha256);
  const where: Pick<DocumentRun, 'instanceIds' | 'fleet'> =
    catchUp !== undefined
      ? { instanceIds: catchUp.instanceIds }
      : request.fleet !== undefined
        ? { fleet: request.fleet }
        : { instanceIds: [request.instanceId!] };
  return documentRunInput(
    {
      documentName: request.documentName,
      ...where,
      deliveryTimeoutSeconds: settings.deliveryTimeoutSeconds,
      outputLogGroupName: settings.outputLogGroupName,
      // The catch-up's comment starts with the roll-out's id: isComplete finds it by that.
      comment:
        catchUp === undefined
          ? `CloudFormation ${origin.requestType} ${origin.logicalResourceId}: deploy ${release}`
          : `${catchUpCommentPrefix(catchUp.commandId)} deploy ${release}`,
    },
    deployParameters(request),
  );
}

/** How a catch-up command's comment starts: it names the roll-out it completes. */
export function catchUpCommentPrefix(commandId: string): string {
  return `catch-up of ${commandId}:`;
}
