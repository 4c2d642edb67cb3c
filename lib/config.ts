/**
 * The stack's settings, read once from CDK context (`cdk.json` or `cdk synth -c key=value`) and
 * checked before any construct is built. Every error names the context key and the bad value.
 */
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { DEFAULT_HEALTH_TIMEOUT_SECONDS, DOCUMENT_PARAM_PATTERNS, MAX_CONCURRENCY_PATTERN, MAX_HEALTH_TIMEOUT_SECONDS } from './contract.js';
import { type ArtifactFile, type ArtifactSource, resolveArtifact } from './artifact.js';
import {
  ANYWHERE_IPV4,
  classifyContextKeys,
  CONTEXT_KEYS,
  type ContextKey,
  DEFAULT_APP_REPOSITORY_BRANCH,
  DEFAULT_INSTANCE_TYPE,
  DEFAULT_JENKINS_INSTANCE_TYPE,
  DEFAULT_MAX_CONCURRENCY,
  elsewhere,
  keysOnlyFor,
  MAX_HOSTS,
} from './context-keys.js';
import { HOST_PORTS } from './constructs/host-parts/ports.js';
import { looksLikeGitHubToken, redactCredentials, REDACTED } from './redact.js';

export { CONTEXT_KEYS, DEFAULT_APP_REPOSITORY_BRANCH, DEFAULT_INSTANCE_TYPE, DEFAULT_JENKINS_INSTANCE_TYPE, DEFAULT_MAX_CONCURRENCY, MAX_HOSTS };

/** Settings of the stack, validated. */
export interface BlueGreenConfig {
  /** An existing VPC to look up; a new one is created when absent. */
  readonly vpcId?: string;
  readonly instanceType: ec2.InstanceType;
  /** The instance type's memory in MiB, for a type lib/memory-budget.ts does not know; its table's figure when absent. */
  readonly instanceMemoryMiB?: number;
  /** Sources allowed on 80 (and 443 with a certificate). Never empty. */
  readonly httpAllowedCidrs: readonly string[];
  /** Always empty: Jenkins serves plain HTTP, so it is reached through a Session Manager port forward only. */
  readonly jenkinsAllowedCidrs: readonly string[];
  /** SSH: the key pair to install, and who may reach port 22 (possibly no one). */
  readonly ssh?: { readonly keyPairName: string; readonly allowedCidrs: readonly string[] };
  /** Secrets Manager secret holding the TLS certificate and key for Nginx; opens 443. */
  readonly tlsCertificateSecretArn?: string;
  /** How long a new slot may take to become healthy, in seconds. */
  readonly healthTimeoutSeconds: number;
  /** The jar deployed on first boot. */
  readonly artifact: ArtifactFile;
  /** What Jenkins builds, and how it reaches GitHub. */
  readonly jenkins: JenkinsConfig;
  /** Several hosts behind a load balancer (context `hosts` > 1); absent for the single host. */
  readonly fleet?: FleetConfig;
  /**
   * Whether the app may reach the instance metadata service, and so use the instance role; by
   * default only root may (and, on the fleet's Jenkins, the Jenkins controller).
   */
  readonly appInstanceRoleAccess: boolean;
  /**
   * Context keys given that this app does not read, far from every key it does (a close one
   * fails instead): synth warns that they are ignored. CDK's own keys are never listed.
   */
  readonly ignoredContextKeys: readonly string[];
}

/** The fleet: how many hosts, how fast a deploy rolls across them, and the load balancer's certificate. */
export interface FleetConfig {
  readonly hosts: number;
  /** SSM `MaxConcurrency`: hosts swapping at once, a number or a percentage. */
  readonly maxConcurrency: string;
  /** ACM certificate for the load balancer's HTTPS listener; HTTP only when absent. */
  readonly certificateArn?: string;
  /** Jenkins' own instance. */
  readonly jenkinsInstanceType: ec2.InstanceType;
  /** Its memory in MiB, for a type lib/memory-budget.ts does not know. */
  readonly jenkinsInstanceMemoryMiB?: number;
}

/** Jenkins' pipeline job and its GitHub access. */
export interface JenkinsConfig {
  /** The app's repository and branch the pipeline job builds; no job when absent. */
  readonly appRepository?: { readonly url: string; readonly branch: string };
  /** Name or ARN of an existing Secrets Manager secret holding a GitHub token; none when absent. */
  readonly githubTokenSecret?: string;
}

/** In place of a value in a `ConfigError`: the value is never shown, only that there was one. */
export const HIDDEN_VALUE: unique symbol = Symbol('hidden context value');

/**
 * A context value that cannot be used; the message names the key and the value. A credential in
 * it (a URL's password, a token) never reaches the message: it says where the credential was instead.
 */
export class ConfigError extends Error {
  constructor(key: ContextKey, value: unknown, problem: string) {
    const shown = value === undefined ? 'is unset' : value === HIDDEN_VALUE ? `= ${REDACTED}` : `= ${JSON.stringify(value)}`;
    super(redactCredentials(`Context '${key}' ${shown}: ${problem}`));
    this.name = 'ConfigError';
  }

  /** A key this app does not read, which the message names as given. */
  static forUnknownKey(key: string, value: unknown, problem: string): ConfigError {
    return new ConfigError(key as ContextKey, value, problem);
  }
}

export interface ReadConfigOptions {
  /** Builds the default artifact; tests replace it to avoid a JDK build per synth. */
  readonly artifactSource?: ArtifactSource;
  /**
   * Every context key the app was given (`app.node.getAllContext()`), so that a misspelled one
   * fails instead of being ignored. @default - none: no key is checked
   */
  readonly givenKeys?: Iterable<string>;
}

/** Reads and validates every setting; throws `ConfigError` on the first bad value. */
export function readConfig(context: (key: string) => unknown, options: ReadConfigOptions = {}): BlueGreenConfig {
  const { ignored } = checkContextKeys(context, options.givenKeys ?? []);
  const jenkinsAllowedCidrs = readJenkinsAllowedCidrs(context);

  const httpAllowedCidrs = readCidrs(context, CONTEXT_KEYS.httpAllowedCidrs, [ANYWHERE_IPV4]);
  if (httpAllowedCidrs.length === 0) {
    throw new ConfigError(
      CONTEXT_KEYS.httpAllowedCidrs,
      context(CONTEXT_KEYS.httpAllowedCidrs),
      `no one could reach the site. Name at least one CIDR, or omit the key for ${ANYWHERE_IPV4}.`,
    );
  }

  const healthTimeoutSeconds = readHealthTimeout(context);
  const artifactVersion = readOptionalString(context, CONTEXT_KEYS.artifactVersion);
  if (artifactVersion !== undefined && !new RegExp(DOCUMENT_PARAM_PATTERNS.version).test(artifactVersion)) {
    throw new ConfigError(
      CONTEXT_KEYS.artifactVersion,
      artifactVersion,
      'use up to 64 letters, digits and . _ + - (starting with a letter or digit).',
    );
  }

  return {
    vpcId: readVpcId(context),
    instanceType: readInstanceType(context),
    instanceMemoryMiB: readMemoryMiB(context, CONTEXT_KEYS.instanceMemoryMiB),
    httpAllowedCidrs,
    jenkinsAllowedCidrs,
    ssh: readSsh(context),
    tlsCertificateSecretArn: readTlsCertificateSecretArn(context),
    healthTimeoutSeconds,
    artifact: readArtifact(context, artifactVersion, options.artifactSource),
    jenkins: readJenkins(context),
    fleet: readFleet(context),
    appInstanceRoleAccess: readBoolean(context, CONTEXT_KEYS.appInstanceRoleAccess, false),
    ignoredContextKeys: ignored,
  };
}

/**
 * Fails on a given key that is close to one this app reads (`-c host=3`, `-c instance-type=...`):
 * CDK would hand the value to no one and synth would build the defaults. Returns the keys that
 * are far from every known one, which the stack warns about (they may be meant for something
 * else; CDK's own keys are not among them).
 */
function checkContextKeys(context: (key: string) => unknown, givenKeys: Iterable<string>): { ignored: readonly string[] } {
  const { misspelled, ignored } = classifyContextKeys(givenKeys);
  const [first, ...others] = misspelled;
  if (first !== undefined) {
    const didYouMean = (candidates: readonly string[]) => `did you mean ${candidates.map((key) => `'${key}'`).join(' or ')}?`;
    const also = others.map(({ key, candidates }) => ` Also '${key}': ${didYouMean(candidates)}`).join('');
    throw ConfigError.forUnknownKey(
      first.key,
      context(first.key),
      `this app reads no such key, so the value would be ignored and the default built instead; ${didYouMean(first.candidates)}` +
        `${also} Nothing was synthesized. Rename the key (docs/context-keys.md lists every key).`,
    );
  }
  return { ignored };
}

/** `hosts` (default 1) and the settings that only mean something with more than one. */
function readFleet(context: (key: string) => unknown): FleetConfig | undefined {
  const raw = context(CONTEXT_KEYS.hosts);
  const text = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim() : raw;
  const hosts = raw === undefined ? 1 : typeof text === 'string' && /^[1-9][0-9]*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(hosts) || hosts > MAX_HOSTS) {
    throw new ConfigError(
      CONTEXT_KEYS.hosts,
      raw,
      `expected a whole number of hosts from 1 (one instance, no load balancer) to ${MAX_HOSTS} (an Auto Scaling group behind a load balancer).`,
    );
  }
  // Each key set for the other layout fails with its own reason (CONTEXT_KEY_SPECS' `elsewhere`).
  if (hosts === 1) {
    const misplaced = keysOnlyFor('fleet').find((key) => context(key) !== undefined);
    if (misplaced !== undefined) {
      throw new ConfigError(
        misplaced,
        context(misplaced),
        `only applies to a fleet ('${CONTEXT_KEYS.hosts}' 2 or more), and this stack is one host: ${elsewhere(misplaced)}`,
      );
    }
    return undefined;
  }
  const misplaced = keysOnlyFor('single').find((key) => context(key) !== undefined);
  if (misplaced !== undefined) {
    throw new ConfigError(
      misplaced,
      context(misplaced),
      `only applies to the single host ('${CONTEXT_KEYS.hosts}' 1), and this stack is a fleet of ${hosts}: ${elsewhere(misplaced)}`,
    );
  }
  const maxConcurrencyRaw = context(CONTEXT_KEYS.maxConcurrency);
  const maxConcurrency =
    maxConcurrencyRaw === undefined
      ? DEFAULT_MAX_CONCURRENCY
      : typeof maxConcurrencyRaw === 'number'
        ? String(maxConcurrencyRaw)
        : typeof maxConcurrencyRaw === 'string'
          ? maxConcurrencyRaw.trim()
          : '';
  if (!new RegExp(MAX_CONCURRENCY_PATTERN).test(maxConcurrency)) {
    throw new ConfigError(
      CONTEXT_KEYS.maxConcurrency,
      maxConcurrencyRaw,
      "expected how many hosts swap at once: a number such as 1 or 2, or a percentage such as '25%' (SSM's MaxConcurrency).",
    );
  }
  if (!maxConcurrency.endsWith('%') && Number(maxConcurrency) >= hosts) {
    throw new ConfigError(
      CONTEXT_KEYS.maxConcurrency,
      maxConcurrencyRaw,
      `would swap all ${hosts} hosts at once, so the load balancer would have no host on the old release to fall back on; use at most ${hosts - 1}.`,
    );
  }
  if (maxConcurrency === '100%') {
    throw new ConfigError(CONTEXT_KEYS.maxConcurrency, maxConcurrencyRaw, 'would swap every host at once; use a smaller percentage or a number of hosts.');
  }
  const certificateArn = readOptionalString(context, CONTEXT_KEYS.certificateArn);
  if (certificateArn !== undefined && !/^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate\/[0-9a-f-]{36}$/.test(certificateArn)) {
    throw new ConfigError(
      CONTEXT_KEYS.certificateArn,
      certificateArn,
      'expected the ARN of an ACM certificate in the stack\'s region (arn:aws:acm:REGION:ACCOUNT:certificate/UUID).',
    );
  }
  return {
    hosts,
    maxConcurrency,
    certificateArn,
    jenkinsInstanceType: readInstanceType(context, CONTEXT_KEYS.jenkinsInstanceType, DEFAULT_JENKINS_INSTANCE_TYPE),
    jenkinsInstanceMemoryMiB: readMemoryMiB(context, CONTEXT_KEYS.jenkinsInstanceMemoryMiB),
  };
}

/**
 * Jenkins serves plain HTTP on its port and this stack terminates no TLS in front of it, so
 * opening that port to any network would send the admin login across it unencrypted. Both keys
 * that open it are refused; the port forward through Session Manager is the way in.
 */
function readJenkinsAllowedCidrs(context: (key: string) => unknown): readonly string[] {
  const portForward =
    "Nothing was deployed and Jenkins' port stays closed. Reach Jenkins through Session Manager instead: leave the key " +
    'unset and run the command in the JenkinsAccess output (aws ssm start-session --document-name ' +
    'AWS-StartPortForwardingSession ...), which carries the login encrypted; the job then looks for new commits ' +
    'every 2 minutes instead of taking GitHub webhooks. To take webhooks, put Jenkins behind your own TLS endpoint.';
  if (readBoolean(context, CONTEXT_KEYS.jenkinsAllowAnywhere, false)) {
    throw new ConfigError(
      CONTEXT_KEYS.jenkinsAllowAnywhere,
      context(CONTEXT_KEYS.jenkinsAllowAnywhere),
      `Jenkins serves plain HTTP, so the stack never opens it to a network, let alone anywhere. ${portForward}`,
    );
  }
  const cidrs = readCidrs(context, CONTEXT_KEYS.jenkinsAllowedCidrs, []);
  if (cidrs.length > 0) {
    throw new ConfigError(
      CONTEXT_KEYS.jenkinsAllowedCidrs,
      context(CONTEXT_KEYS.jenkinsAllowedCidrs),
      `would open Jenkins' port ${HOST_PORTS.jenkins} to ${cidrs.join(', ')}, where it serves plain HTTP: the admin login ` +
        `would cross the network unencrypted. ${portForward}`,
    );
  }
  return cidrs;
}

/**
 * A repository Jenkins can clone without a shell ever seeing it: `https://host/path`, scp-like
 * `user@host:path` or `ssh://[user@]host[:port]/path`. No credentials in the URL, no query, no
 * blanks, quotes, `$` or backslashes (the URL ends up in JCasC YAML and a Job DSL script).
 */
const REPOSITORY_URL_FORMS = [
  /^https:\/\/[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?(\/[A-Za-z0-9._~-]+)+\/?$/,
  /^[A-Za-z0-9][A-Za-z0-9._-]*@[A-Za-z0-9][A-Za-z0-9.-]*:[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/,
  /^ssh:\/\/([A-Za-z0-9][A-Za-z0-9._-]*@)?[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?(\/[A-Za-z0-9._~-]+)+\/?$/,
];

/** A plain branch name: `main`, `release/1.x`; git's own rules for what it may not contain. */
const BRANCH_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$/;

const SECRET_ARN_PATTERN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$/;
const SECRET_NAME_PATTERN = /^[A-Za-z0-9/_+=.@-]{1,512}$/;

function readJenkins(context: (key: string) => unknown): JenkinsConfig {
  const url = readOptionalString(context, CONTEXT_KEYS.appRepositoryUrl);
  const branch = readOptionalString(context, CONTEXT_KEYS.appRepositoryBranch) ?? DEFAULT_APP_REPOSITORY_BRANCH;
  if (url !== undefined && !REPOSITORY_URL_FORMS.some((form) => form.test(url))) {
    const hint = /^[a-z][a-z0-9+.-]*:\/\/[^/]*:[^/]*@/i.test(url) || /^https?:\/\/[^/]*@/i.test(url)
      ? `credentials do not belong in the URL: name a secret with the token in ${CONTEXT_KEYS.githubTokenSecret} instead, and give ` +
        `the URL without them (Jenkins would keep them in its job configuration). The part before '@' held them; it is shown as ` +
        `${REDACTED} and never echoed. If that password or token was real, revoke it: it was on a command line or in cdk.json.`
      : url.startsWith('http://')
        ? 'plain http is not accepted: use the https:// URL.'
        : 'expected https://HOST/OWNER/REPO(.git), git@HOST:OWNER/REPO(.git) or ssh://git@HOST/OWNER/REPO(.git), ' +
          'with letters, digits and . _ ~ - in the path.';
    throw new ConfigError(CONTEXT_KEYS.appRepositoryUrl, url, hint);
  }
  if (!BRANCH_PATTERN.test(branch) || /\.\.|\/\/|\/$|\.$|\.lock$|@\{/.test(branch)) {
    throw new ConfigError(
      CONTEXT_KEYS.appRepositoryBranch,
      branch,
      'expected a plain branch name such as main or release/1.x: letters, digits and . _ / -, no blanks or shell characters.',
    );
  }
  const githubTokenSecret = readOptionalString(context, CONTEXT_KEYS.githubTokenSecret);
  if (githubTokenSecret !== undefined && looksLikeGitHubToken(githubTokenSecret)) {
    // As a secret name it would pass, and the token would be written into the template and an IAM policy.
    throw new ConfigError(
      CONTEXT_KEYS.githubTokenSecret,
      HIDDEN_VALUE,
      'the value is shaped like a GitHub token itself (not shown), not the name of the Secrets Manager secret holding one. ' +
        'Nothing was synthesized. Store the token in a secret (aws secretsmanager create-secret --name ci/github-token ' +
        '--secret-string TOKEN) and give its name; if a secret really has this name, give its ARN. If the token was real, revoke ' +
        'it: it was on a command line or in cdk.json.',
    );
  }
  if (githubTokenSecret !== undefined) {
    const valid = githubTokenSecret.startsWith('arn:')
      ? SECRET_ARN_PATTERN.test(githubTokenSecret)
      : SECRET_NAME_PATTERN.test(githubTokenSecret);
    if (!valid) {
      throw new ConfigError(
        CONTEXT_KEYS.githubTokenSecret,
        githubTokenSecret,
        'expected the name or ARN of an existing Secrets Manager secret whose value is the token ' +
          '(create it with: aws secretsmanager create-secret --name ci/github-token --secret-string TOKEN).',
      );
    }
  }
  return {
    appRepository: url === undefined ? undefined : { url, branch },
    githubTokenSecret,
  };
}

function readVpcId(context: (key: string) => unknown): string | undefined {
  const vpcId = readOptionalString(context, CONTEXT_KEYS.vpcId);
  if (vpcId !== undefined && !/^vpc-([0-9a-f]{8}|[0-9a-f]{17})$/.test(vpcId)) {
    throw new ConfigError(CONTEXT_KEYS.vpcId, vpcId, "expected a VPC id such as 'vpc-0123456789abcdef0'.");
  }
  return vpcId;
}

/** EC2 class names from aws-cdk-lib's table, without its long aliases ('burstable3' for 't3'). */
const KNOWN_INSTANCE_CLASSES: ReadonlySet<string> = new Set(
  Object.values(ec2.InstanceClass).filter((name) => /^[a-z]{1,5}[0-9]/.test(name) || /^u-/.test(name)),
);
const KNOWN_INSTANCE_SIZES: ReadonlySet<string> = new Set(Object.values(ec2.InstanceSize));

function readInstanceType(
  context: (key: string) => unknown,
  key: typeof CONTEXT_KEYS.instanceType | typeof CONTEXT_KEYS.jenkinsInstanceType = CONTEXT_KEYS.instanceType,
  fallback = DEFAULT_INSTANCE_TYPE,
): ec2.InstanceType {
  const name = readOptionalString(context, key) ?? fallback;
  const [instanceClass, size, ...rest] = name.split('.');
  if (rest.length > 0 || !KNOWN_INSTANCE_CLASSES.has(instanceClass ?? '') || !KNOWN_INSTANCE_SIZES.has(size ?? '')) {
    throw new ConfigError(key, name, `not a known EC2 instance type (class.size, e.g. '${DEFAULT_INSTANCE_TYPE}' or 't4g.medium').`);
  }
  if (instanceClass?.startsWith('mac')) {
    throw new ConfigError(key, name, 'Mac instances cannot run Amazon Linux 2023.');
  }
  return new ec2.InstanceType(name);
}

/** An instance's memory in MiB: a whole number (context values from `-c` arrive as strings). */
function readMemoryMiB(
  context: (key: string) => unknown,
  key: typeof CONTEXT_KEYS.instanceMemoryMiB | typeof CONTEXT_KEYS.jenkinsInstanceMemoryMiB,
): number | undefined {
  const value = context(key);
  if (value === undefined) return undefined;
  const mib = typeof value === 'string' && /^[0-9]+$/.test(value) ? Number(value) : value;
  if (typeof mib !== 'number' || !Number.isInteger(mib) || mib < 1) {
    throw new ConfigError(key, value, "give the instance type's memory as a whole number of MiB, e.g. 8192 for 8 GiB.");
  }
  return mib;
}

function readSsh(context: (key: string) => unknown): BlueGreenConfig['ssh'] {
  const keyPairName = readOptionalString(context, CONTEXT_KEYS.sshKeyPairName);
  const allowedCidrs = readCidrs(context, CONTEXT_KEYS.sshAllowedCidrs, []);
  if (keyPairName === undefined) {
    if (allowedCidrs.length > 0) {
      throw new ConfigError(
        CONTEXT_KEYS.sshAllowedCidrs,
        context(CONTEXT_KEYS.sshAllowedCidrs),
        `port 22 opens only together with '${CONTEXT_KEYS.sshKeyPairName}'; shell access is otherwise Session Manager.`,
      );
    }
    return undefined;
  }
  if (!/^[\x20-\x7e]{1,255}$/.test(keyPairName) || keyPairName.trim() !== keyPairName) {
    throw new ConfigError(CONTEXT_KEYS.sshKeyPairName, keyPairName, 'expected the name of an existing EC2 key pair.');
  }
  if (allowedCidrs.some(isAnywhere)) {
    throw new ConfigError(
      CONTEXT_KEYS.sshAllowedCidrs,
      context(CONTEXT_KEYS.sshAllowedCidrs),
      'SSH is never opened to the whole internet; name your own network, or use Session Manager.',
    );
  }
  return { keyPairName, allowedCidrs };
}

function readTlsCertificateSecretArn(context: (key: string) => unknown): string | undefined {
  const arn = readOptionalString(context, CONTEXT_KEYS.tlsCertificateSecretArn);
  if (arn !== undefined && !/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$/.test(arn)) {
    throw new ConfigError(
      CONTEXT_KEYS.tlsCertificateSecretArn,
      arn,
      'expected the ARN of a Secrets Manager secret (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME).',
    );
  }
  return arn;
}

function readHealthTimeout(context: (key: string) => unknown): number {
  const raw = context(CONTEXT_KEYS.healthTimeout);
  if (raw === undefined) return DEFAULT_HEALTH_TIMEOUT_SECONDS;
  const text = typeof raw === 'number' ? String(raw) : raw;
  if (typeof text !== 'string' || !new RegExp(DOCUMENT_PARAM_PATTERNS.healthTimeout).test(text.trim())) {
    throw new ConfigError(
      CONTEXT_KEYS.healthTimeout,
      raw,
      `expected a whole number of seconds from 1 to ${MAX_HEALTH_TIMEOUT_SECONDS}.`,
    );
  }
  return Number(text.trim());
}

function readArtifact(
  context: (key: string) => unknown,
  version: string | undefined,
  source: ArtifactSource | undefined,
): ArtifactFile {
  const path = readOptionalString(context, CONTEXT_KEYS.artifact);
  try {
    return resolveArtifact({ path, version }, source);
  } catch (error) {
    const problem = error instanceof Error ? error.message : String(error);
    throw new ConfigError(CONTEXT_KEYS.artifact, path, problem);
  }
}

function readOptionalString(context: (key: string) => unknown, key: ContextKey): string | undefined {
  const raw = context(key);
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'string') throw new ConfigError(key, raw, 'expected a string.');
  const value = raw.trim();
  return value === '' ? undefined : value;
}

function readBoolean(context: (key: string) => unknown, key: ContextKey, fallback: boolean): boolean {
  const raw = context(key);
  if (raw === undefined) return fallback;
  if (raw === true || raw === 'true') return true;
  if (raw === false || raw === 'false') return false;
  throw new ConfigError(key, raw, 'expected true or false.');
}

/**
 * A list of IPv4 CIDRs: a JSON array (cdk.json), or on the command line a JSON array or a
 * comma-separated string. Duplicates are dropped; order is kept.
 */
function readCidrs(context: (key: string) => unknown, key: ContextKey, fallback: readonly string[]): readonly string[] {
  const raw = context(key);
  if (raw === undefined) return fallback;
  let items: unknown = raw;
  if (typeof raw === 'string') {
    const text = raw.trim();
    if (text.startsWith('[')) {
      try {
        items = JSON.parse(text);
      } catch {
        throw new ConfigError(key, raw, 'looks like a JSON array but does not parse.');
      }
    } else {
      items = text === '' ? [] : text.split(',').map((item) => item.trim());
    }
  }
  if (!Array.isArray(items)) throw new ConfigError(key, raw, 'expected a list of CIDRs, e.g. ["203.0.113.0/24"].');
  const cidrs: string[] = [];
  for (const item of items) {
    if (typeof item !== 'string') throw new ConfigError(key, raw, `${JSON.stringify(item)} is not a CIDR string.`);
    const problem = ipv4CidrProblem(item);
    if (problem !== undefined) throw new ConfigError(key, raw, `'${item}' ${problem}`);
    if (!cidrs.includes(item)) cidrs.push(item);
  }
  return cidrs;
}

/** Why `cidr` is not a canonical IPv4 CIDR, or undefined when it is one. */
export function ipv4CidrProblem(cidr: string): string | undefined {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (match === null) {
    return cidr.includes(':')
      ? 'is IPv6; the stack has no IPv6 networking, so only IPv4 CIDRs (a.b.c.d/n) are accepted.'
      : 'is not an IPv4 CIDR (a.b.c.d/n).';
  }
  const octets = match.slice(1, 5).map(Number);
  const prefixLength = Number(match[5]);
  if (octets.some((octet) => octet > 255) || prefixLength > 32) return 'is not an IPv4 CIDR (a.b.c.d/n).';
  const address = octets.reduce((value, octet) => value * 256 + octet, 0);
  const hostBits = 2 ** (32 - prefixLength);
  if (address % hostBits !== 0) {
    const network = address - (address % hostBits);
    const dotted = [24, 16, 8, 0].map((shift) => Math.floor(network / 2 ** shift) % 256).join('.');
    return `has host bits set; did you mean ${dotted}/${prefixLength}?`;
  }
  return undefined;
}

function isAnywhere(cidr: string): boolean {
  return cidr.endsWith('/0');
}

/**
 * The stack's environment: none (so synth works offline, with no credentials) unless an
 * existing VPC must be looked up, which needs the account and region the CLI resolved.
 */
export function lookupEnvironment(
  config: BlueGreenConfig,
  processEnv: Readonly<Record<string, string | undefined>>,
): { account: string; region: string } | undefined {
  if (config.vpcId === undefined) return undefined;
  const account = processEnv.CDK_DEFAULT_ACCOUNT;
  const region = processEnv.CDK_DEFAULT_REGION;
  if (account === undefined || region === undefined) {
    throw new ConfigError(
      CONTEXT_KEYS.vpcId,
      config.vpcId,
      'looking up an existing VPC needs an account and region, and the CDK CLI found none. ' +
        'Run with AWS credentials (and a region), or omit vpcId to create a new VPC.',
    );
  }
  return { account, region };
}
