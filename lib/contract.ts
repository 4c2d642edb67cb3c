/**
 * Names shared by the CDK constructs, the Lambda handlers, the SSM document and the host engine.
 *
 * Keep every name that crosses a process boundary here, so that a rename is a compile error
 * on both sides instead of a deploy that silently passes nothing.
 */

/** Where the host engine (`assets/instance/`) is installed on the EC2 host. */
export const HOST_PATHS = {
  /** The whole `assets/instance/` tree. */
  libDir: '/usr/local/lib/bluegreen',
  /** Symlink to `${libDir}/bin/bluegreen`. */
  command: '/usr/local/bin/bluegreen',
  /** The engine's `KEY=VALUE` configuration file (`BLUEGREEN_CONF`). */
  configFile: '/etc/bluegreen/bluegreen.conf',
  /** systemd template unit that runs one slot (`bluegreen-slot@blue`, `bluegreen-slot@green`). */
  slotUnit: 'bluegreen-slot@.service',
} as const;

/** The two slots the engine swaps between. */
export type Slot = 'blue' | 'green';

/** Actions the SSM document accepts. */
export const DOCUMENT_ACTIONS = ['deploy', 'rollback', 'status', 'history'] as const;
export type DocumentAction = (typeof DOCUMENT_ACTIONS)[number];

/** How many history entries the document's `history` action returns: they fit in SSM's 24,000 characters. */
export const DOCUMENT_HISTORY_LIMIT = 30;

/**
 * The stack's outputs that tools read (the operator command in cli/, the docs). Renaming one
 * breaks every checkout of the command that reads it.
 */
export const STACK_OUTPUTS = {
  instanceId: 'InstanceId',
  documentName: 'DeployDocumentName',
  outputLogGroup: 'DeployOutputLogGroup',
  /** `s3://BUCKET/PREFIX/`: where `ec2-bluegreen deploy JAR` uploads jars; the instance role reads them. */
  artifactUploadLocation: 'ArtifactUploadLocation',
  siteUrl: 'SiteUrl',
  /** Fleet mode only: `tag:KEY=VALUE`, the SSM target that names every app host. */
  fleetTarget: 'FleetTarget',
  /** Fleet mode only: the SSM parameter holding the release the fleet runs (`FLEET_RELEASE_KEYS`). */
  fleetReleaseParameter: 'FleetReleaseParameter',
  /** Fleet mode only: how many hosts swap at once (SSM `MaxConcurrency`). */
  fleetMaxConcurrency: 'FleetMaxConcurrency',
} as const;

/**
 * Fleet mode (context `hosts` > 1): the app hosts carry this tag (value: one per stack), and
 * every deploy targets them by it, so a host the Auto Scaling group adds is a target at once.
 */
export const FLEET_TAG_KEY = 'BlueGreenFleet';

/** SSM's `MaxConcurrency` syntax: a number of hosts or a percentage of them. */
export const MAX_CONCURRENCY_PATTERN = '^([1-9][0-9]{0,3}|[1-9][0-9]?%|100%)$';

/**
 * Keys of the fleet release parameter (`KEY=VALUE` lines): what a host the Auto Scaling group
 * adds deploys at boot. Written only after a deploy succeeded on every host; until the first one,
 * it holds `FLEET_RELEASE_UNSET` and hosts boot the stack's first release.
 */
export const FLEET_RELEASE_KEYS = {
  artifactUri: 'artifactUri',
  sha256: 'sha256',
  version: 'version',
  /** The command that deployed it (or `-` when written by hand). */
  commandId: 'commandId',
  /** ISO 8601 time it was recorded. */
  recordedAt: 'recordedAt',
  /** Who recorded it: `cloudformation`, `cli` or `jenkins`. */
  recordedBy: 'recordedBy',
  /**
   * The release recorded before this one (empty when none): what every host keeps as its warm
   * standby, so a fleet-wide `rollback` records it back.
   */
  previousArtifactUri: 'previousArtifactUri',
  previousSha256: 'previousSha256',
  previousVersion: 'previousVersion',
} as const;

/**
 * The S3 object tag that keeps an uploaded jar from expiring while the fleet's release record
 * names it. Uploads carry `unrecorded`, and the upload location's lifecycle rule expires only
 * those; whoever records a release tags its jar and the previous one `recorded`, and the jar the
 * record no longer names `unrecorded` again.
 */
export const RELEASE_RETENTION_TAG = {
  key: 'ec2-bluegreen-release',
  recorded: 'recorded',
  unrecorded: 'unrecorded',
} as const;

/** The fleet release parameter's value before any deploy has succeeded (SSM refuses an empty value). */
export const FLEET_RELEASE_UNSET = '# no release recorded yet: hosts boot the stack first release';

/**
 * Parameters of the SSM Command document. With `interpolationType: ENV_VAR` each reaches the
 * script as the environment variable `SSM_<name>`.
 */
export const DOCUMENT_PARAMS = {
  action: 'action',
  artifactUri: 'artifactUri',
  sha256: 'sha256',
  version: 'version',
  healthTimeout: 'healthTimeout',
  /**
   * (deploy, rollback) Install the stack's engine bundle first where the host's engine differs,
   * so that an engine change reaches hosts that booted with an older one. Empty, or exactly the
   * bundle the stack wrote into the document with its content hash (lib/constructs/deploy-document.ts):
   * the caller chooses whether, never which engine runs as root.
   */
  engineUri: 'engineUri',
} as const;

/** The environment variable through which SSM Agent passes a document parameter. */
export function documentParamEnvVar(name: (typeof DOCUMENT_PARAMS)[keyof typeof DOCUMENT_PARAMS]): string {
  return `SSM_${name}`;
}

/**
 * The exit codes of `bluegreen` on the host, and so of the SSM document, which passes the
 * engine's on and uses three of them itself: the one table of number, name and meaning.
 *
 * Built from it: `EXIT_CODES`, the document's description, the deploy's failure reasons. Checked
 * against it by test/contract/exit-codes.e2e.test.ts: the engine's `EXIT_<NAME>` variables
 * (`exitCodeShellName`), its usage text, the document script's codes and the table in docs/exit-codes.md.
 * A meaning completes "the deploy failed with exit status 5 (...)".
 */
export const EXIT_CODE_TABLE = {
  ok: { code: 0, meaning: 'success' },
  unexpected: { code: 1, meaning: 'an unexpected error on the host' },
  usage: { code: 2, meaning: 'a bad parameter or host configuration' },
  badArtifact: { code: 3, meaning: 'the artifact was rejected: missing, not a runnable jar, or not the expected sha256' },
  locked: { code: 4, meaning: 'another deploy, switch or rollback held the lock' },
  unhealthy: { code: 5, meaning: 'the new release did not become healthy' },
  nginxRejected: { code: 6, meaning: 'Nginx rejected the switch' },
  nothingToSwitchTo: { code: 7, meaning: 'there was nothing to switch to' },
  rolledBack: { code: 8, meaning: 'the new release misbehaved after the switch and was rolled back to the previous one' },
} as const satisfies Record<string, { readonly code: number; readonly meaning: string }>;

export type ExitCodeName = keyof typeof EXIT_CODE_TABLE;

/** Each exit code's number by name: `EXIT_CODES.unhealthy` is 5. */
export const EXIT_CODES = Object.freeze(
  Object.fromEntries(Object.entries(EXIT_CODE_TABLE).map(([name, entry]) => [name, entry.code])),
) as { readonly [Name in ExitCodeName]: (typeof EXIT_CODE_TABLE)[Name]['code'] };

/** The engine's variable for an exit code: `badArtifact` is `EXIT_BAD_ARTIFACT`. */
export function exitCodeShellName(name: ExitCodeName): string {
  return `EXIT_${name.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()}`;
}

/** The table's entry for an exit status, or undefined for a status the engine never exits with. */
export function exitCodeEntry(code: number): { readonly name: ExitCodeName; readonly code: number; readonly meaning: string } | undefined {
  const name = (Object.keys(EXIT_CODE_TABLE) as ExitCodeName[]).find((key) => EXIT_CODE_TABLE[key].code === code);
  return name === undefined ? undefined : { name, ...EXIT_CODE_TABLE[name] };
}

/**
 * The label of a release deployed without one (`bluegreen deploy` without `--version`, a jar
 * given without `artifactVersion` or `--version`): its content, so that two different jars never
 * share a label in the history. The engine (`default_release_label`) and the first boot
 * (`assets/userdata/bootstrap.sh`) apply the same rule; test/contract/release-label.e2e.test.ts checks them.
 */
export const DEFAULT_RELEASE_LABEL_PREFIX = 'sha256-';

/** `sha256-` and the first 12 hex digits of the jar's SHA-256, e.g. `sha256-9f86d081884c`. */
export function defaultReleaseLabel(sha256: string): string {
  return `${DEFAULT_RELEASE_LABEL_PREFIX}${sha256.slice(0, 12)}`;
}

/** `s3://bucket/key`: an S3 object, as a CDK asset's `s3ObjectUrl` names it. */
const S3_URI_PATTERN = '^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[A-Za-z0-9._+/=-]+$';

/** A location the document fetches from: empty, an absolute path on the host, `s3://bucket/key` or an `https://` URL. */
const URI_PATTERN = `^$|^/[A-Za-z0-9._+/-]+$|${S3_URI_PATTERN}|^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._~+/=%&?-]*$`;

/**
 * What each document parameter accepts (SSM `allowedPattern`). The stack validates its own
 * context against the same patterns, so a value it puts in an output or a default is one the
 * document takes. Kept to the regex subset that SSM, JavaScript and bash `[[ =~ ]]` agree on.
 */
export const DOCUMENT_PARAM_PATTERNS = {
  action: `^(${DOCUMENT_ACTIONS.join('|')})$`,
  /**
   * Empty (for rollback and status), an absolute path on the host, `s3://bucket/key` or an
   * `https://` URL (a presigned URL needs `?`, `&`, `=` and `%`). Blanks, quotes, `$`, `;`, `|`,
   * backquotes and parentheses never match. The script does not rely on that (values arrive as
   * environment variables), but agents older than ENV_VAR interpolation splice `{{ }}` text.
   */
  artifactUri: URI_PATTERN,
  sha256: '^$|^[0-9a-f]{64}$',
  version: '^$|^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$',
  healthTimeout: '^[1-9][0-9]{0,2}$',
  /**
   * The shape: empty, or the engine bundle's CDK asset in S3. The document narrows it to the one
   * bundle its stack wrote into it (its `allowedPattern` and its script both compare).
   */
  engineUri: `^$|${S3_URI_PATTERN}`,
} as const satisfies Record<keyof typeof DOCUMENT_PARAMS, string>;

/** The engine bundle's content hash (lib/engine-bundle.ts): 64 lower-case hex digits. */
export const ENGINE_HASH_PATTERN = '^[0-9a-f]{64}$';

/** The largest health timeout `DOCUMENT_PARAM_PATTERNS.healthTimeout` admits, in seconds. */
export const MAX_HEALTH_TIMEOUT_SECONDS = 999;

/**
 * The health timeout when none is given, in seconds: the app's context default, the document
 * parameter's default and the first boot's. The engine's own default (BLUEGREEN_HEALTH_TIMEOUT
 * in assets/instance/lib/common.sh) is the same number.
 */
export const DEFAULT_HEALTH_TIMEOUT_SECONDS = 120;

/**
 * The deploy custom resource (`lib/constructs/bluegreen-deployment.ts` and `lambda/deploy/`):
 * the handlers' export names, the resource's properties and attributes, and the settings the
 * construct hands the Lambda functions as environment variables.
 */
export const DEPLOY_HANDLERS = { onEvent: 'onEvent', isComplete: 'isComplete' } as const;

/**
 * Properties of the `Custom::BlueGreenDeployment` resource. A change to any of them is a
 * CloudFormation Update, and so a deploy; CloudFormation passes every value as a string.
 */
export const DEPLOYMENT_PROPERTIES = {
  instanceId: 'InstanceId',
  documentName: 'DocumentName',
  artifactUri: 'ArtifactUri',
  sha256: 'Sha256',
  version: 'Version',
  healthTimeout: 'HealthTimeoutSeconds',
  /**
   * The stack's engine bundle, which the document installs first where a host runs another one
   * (the document holds its hash and accepts no other); absent: the document leaves the engine alone.
   */
  engineUri: 'EngineUri',
  /** Fleet mode, instead of `InstanceId`: the tag key and value SSM targets. */
  targetTagKey: 'TargetTagKey',
  targetTagValue: 'TargetTagValue',
  /** Fleet mode: SSM `MaxConcurrency` (a number or a percentage). `MaxErrors` is always 0. */
  maxConcurrency: 'MaxConcurrency',
  /** Fleet mode: the SSM parameter the release is recorded in after every host succeeded. */
  releaseParameterName: 'ReleaseParameterName',
} as const;

/** Attributes of a successful deploy (`Fn::GetAtt`), well under CloudFormation's 4 KB. */
export const DEPLOYMENT_ATTRIBUTES = { liveSlot: 'LiveSlot', version: 'Version', commandId: 'CommandId', hosts: 'Hosts' } as const;

/** Environment variables of the deploy functions; a change to them never triggers a deploy. */
export const DEPLOY_FUNCTION_ENV = {
  /** How long `onEvent` waits for the instance to be `Online` in Systems Manager, in seconds. */
  onlineWaitSeconds: 'BLUEGREEN_ONLINE_WAIT_SECONDS',
  /** How often `onEvent` asks whether the instance is online, in seconds. */
  onlinePollSeconds: 'BLUEGREEN_ONLINE_POLL_SECONDS',
  /** SendCommand's `TimeoutSeconds`: how long the command may wait to start on the instance. */
  deliveryTimeoutSeconds: 'BLUEGREEN_DELIVERY_TIMEOUT_SECONDS',
  /** The document's execution timeout, in seconds, quoted in failure messages. */
  executionTimeoutSeconds: 'BLUEGREEN_EXECUTION_TIMEOUT_SECONDS',
  /** CloudWatch log group for the command's full output. @default - none (output stays in SSM) */
  outputLogGroupName: 'BLUEGREEN_OUTPUT_LOG_GROUP',
  /**
   * Fleet only: `s3://BUCKET/PREFIX/`, where the operator command uploads jars; recording a release
   * tags the jars there that the record names (RELEASE_RETENTION_TAG). @default - none: no tagging
   */
  uploadLocation: 'BLUEGREEN_UPLOAD_LOCATION',
} as const;

/*
 * The engine's JSON output: `bluegreen status --json` and `bluegreen history --json` on the host
 * (assets/instance/bin/bluegreen), which the document's `status` and `history` actions print and
 * the operator command and the tests read. A field renamed on one side only is a compile error
 * on the other.
 */

/** One slot in `bluegreen status --json`. */
export interface SlotStatus {
  readonly port: number;
  readonly role: 'live' | 'standby' | 'idle';
  readonly version: string | null;
  readonly sha256: string | null;
  readonly release: string | null;
  readonly running: boolean;
  readonly healthy: boolean;
  readonly pid: number | null;
  /** The last bake of this slot's release: `passed: …` or `failed: …`. */
  readonly bake: string | null;
}

/** One line of the engine's history: an entry of `bluegreen history --json`, and status's `lastOperation`. */
export interface HistoryEntry {
  readonly at: string;
  readonly action: string;
  readonly from: string | null;
  readonly to: string | null;
  readonly version: string | null;
  readonly sha256: string | null;
  readonly result: 'ok' | 'failed' | 'rolled-back' | 'noop' | 'interrupted';
  readonly seconds: number | null;
  readonly appSeconds: number | null;
  readonly message: string;
}

/** `bluegreen status --json`. */
export interface Status {
  /** The slot Nginx sends traffic to; null before the first deploy. */
  readonly live: Slot | null;
  /**
   * The standby that Nginx sends requests to right now because the live slot refuses connections
   * (crashed, being restarted); null while the live slot is up. Absent from an engine that
   * predates the fallback.
   */
  readonly fallback?: Slot | null;
  readonly slots: { readonly [slot in Slot]: SlotStatus };
  readonly lastOperation: HistoryEntry | null;
}
