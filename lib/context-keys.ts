/**
 * The context keys this app reads (`cdk.json` or `cdk synth -c key=value`): the one list that
 * the config reader (lib/config.ts) reads by, that the check for misspelled keys compares
 * against, and that docs/context-keys.md is generated from (scripts/context-keys-doc.ts).
 */
import { DEFAULT_HEALTH_TIMEOUT_SECONDS, MAX_HEALTH_TIMEOUT_SECONDS } from './contract.js';
import { SAMPLE_APP_VERSION } from './artifact.js';

export const DEFAULT_INSTANCE_TYPE = 't3.small';
export const DEFAULT_APP_REPOSITORY_BRANCH = 'main';
/** One host per Availability Zone is the floor of a fleet; this is its ceiling for one deploy document run. */
export const MAX_HOSTS = 50;
export const DEFAULT_MAX_CONCURRENCY = '1';
export const DEFAULT_JENKINS_INSTANCE_TYPE = 't3.small';
export const ANYWHERE_IPV4 = '0.0.0.0/0';

/** Where a key means something: on both layouts, only on the single host, or only on a fleet (`hosts` > 1). */
export type Layout = 'both' | 'single' | 'fleet';

/** One key of the reference. */
export type ContextKeySpec = {
  /** The default, in words (Markdown), for the reference. */
  readonly default: string;
  /** What it sets, in words (Markdown). */
  readonly meaning: string;
} & (
  | { readonly layout: 'both' }
  | {
      readonly layout: 'single' | 'fleet';
      /**
       * Why the key means nothing on the other layout and what to do instead: the whole of the
       * synth error when it is given there, so each key's error speaks of that key.
       */
      readonly elsewhere: string;
    }
);

const code = (text: string | number) => `\`${text}\``;

/** Every key, in the order of the reference. */
export const CONTEXT_KEY_SPECS = {
  artifact: {
    default: 'the sample app, built with the JDK at synth',
    meaning: 'path to the jar deployed on first boot (checked: it exists and is a jar)',
    layout: 'both',
  },
  artifactVersion: {
    default: `${code('sha256-')} and the first 12 hex digits of the jar's sha256 (the sample app: ${code(SAMPLE_APP_VERSION)})`,
    meaning: 'the release label recorded for that jar: up to 64 letters, digits and `. _ + -`',
    layout: 'both',
  },
  instanceType: {
    default: code(DEFAULT_INSTANCE_TYPE),
    meaning: 'EC2 instance type of the host, or of each fleet host (checked at synth)',
    layout: 'both',
  },
  instanceMemoryMiB: {
    default: "the instance type's memory, from the app's table of types",
    meaning:
      "the memory of `instanceType` in MiB, for a type the app's table does not know; each process's memory budget is worked out from it, and synth refuses less than the budget's minimum",
    layout: 'both',
  },
  vpcId: {
    default: 'a new VPC (public subnets, no NAT gateway)',
    meaning: 'an existing VPC to use; it is looked up, which needs credentials, an account and a region',
    layout: 'both',
  },
  httpAllowedCidrs: {
    default: code(ANYWHERE_IPV4),
    meaning: 'IPv4 CIDRs that may reach port 80 (and 443 with a certificate): a JSON array, or a comma-separated list on the command line; never empty',
    layout: 'both',
  },
  jenkinsAllowedCidrs: {
    default: 'none',
    meaning:
      "must stay empty: Jenkins serves plain HTTP, so synth refuses any CIDR (the admin login would cross the network unencrypted); reach Jenkins through the Session Manager port forward of the `JenkinsAccess` output",
    layout: 'both',
  },
  jenkinsAllowAnywhere: {
    default: code('false'),
    meaning: 'must stay `false`: synth refuses `true` for the same reason',
    layout: 'both',
  },
  sshKeyPairName: {
    default: 'none',
    meaning: 'an existing EC2 key pair to install; shell access is otherwise Session Manager',
    layout: 'both',
  },
  sshAllowedCidrs: {
    default: 'none',
    meaning: 'who may reach port 22 (never `0.0.0.0/0`); only together with `sshKeyPairName`',
    layout: 'both',
  },
  tlsCertificateSecretArn: {
    default: 'none (HTTP only)',
    meaning:
      "ARN of a Secrets Manager secret whose value is the PEM certificate (with its chain) followed by the PEM private key: the host's Nginx serves HTTPS on 443 and redirects HTTP to it",
    layout: 'single',
    elsewhere: "the load balancer terminates TLS: give an ACM certificate in 'certificateArn' instead (the hosts behind it take HTTP from it only).",
  },
  healthTimeout: {
    default: code(DEFAULT_HEALTH_TIMEOUT_SECONDS),
    meaning: `seconds a new slot has to become healthy (1 to ${MAX_HEALTH_TIMEOUT_SECONDS})`,
    layout: 'both',
  },
  appInstanceRoleAccess: {
    default: code('false'),
    meaning:
      "`true` lets the app (user `bluegreen`) get the instance role's credentials from the metadata service; synth warns what that exposes. Only for an app that calls AWS itself",
    layout: 'both',
  },
  appRepositoryUrl: {
    default: 'none (no pipeline job)',
    meaning:
      "the repository Jenkins' pipeline job builds: `https://HOST/OWNER/REPO(.git)`, `git@HOST:OWNER/REPO(.git)` or `ssh://git@HOST/OWNER/REPO(.git)`; no credentials in the URL (use `githubTokenSecret`)",
    layout: 'both',
  },
  appRepositoryBranch: {
    default: code(DEFAULT_APP_REPOSITORY_BRANCH),
    meaning: 'the branch whose pushes are built and deployed',
    layout: 'both',
  },
  githubTokenSecret: {
    default: 'none',
    meaning: 'name or ARN of an existing Secrets Manager secret holding a GitHub token (never the token itself); Jenkins reads it at boot',
    layout: 'both',
  },
  hosts: {
    default: code(1),
    meaning: `${code(1)}: the single host, no load balancer. 2 to ${MAX_HOSTS}: a fleet of hosts behind an Application Load Balancer, Jenkins on its own instance`,
    layout: 'both',
  },
  maxConcurrency: {
    default: code(DEFAULT_MAX_CONCURRENCY),
    meaning: "hosts swapping at once in a roll-out: a number below `hosts`, or a percentage below 100% (SSM's `MaxConcurrency`)",
    layout: 'fleet',
    elsewhere:
      "it paces a roll-out across several hosts, and one host has nothing to pace (its deploy swaps its own two slots, the old release kept warm beside the new). Set 'hosts' to 2 or more for a fleet, or drop the key.",
  },
  certificateArn: {
    default: 'none (HTTP only)',
    meaning: "an ACM certificate for the load balancer's HTTPS listener (443, and 80 redirected to it)",
    layout: 'fleet',
    elsewhere:
      "an ACM certificate goes on a fleet's load balancer, and the single host has none: it terminates TLS itself, with the certificate and key in the Secrets Manager secret 'tlsCertificateSecretArn' names. Use that key instead, or set 'hosts' to 2 or more.",
  },
  jenkinsInstanceType: {
    default: code(DEFAULT_JENKINS_INSTANCE_TYPE),
    meaning: "EC2 instance type of Jenkins' own instance",
    layout: 'fleet',
    elsewhere:
      "only a fleet gives Jenkins an instance of its own; the single host runs Jenkins beside the app, on the instance 'instanceType' sizes. Size that instead, or set 'hosts' to 2 or more.",
  },
  jenkinsInstanceMemoryMiB: {
    default: "the Jenkins instance type's memory, from the app's table of types",
    meaning: "the memory of `jenkinsInstanceType` in MiB, for a type the app's table does not know",
    layout: 'fleet',
    elsewhere:
      "only a fleet gives Jenkins an instance of its own; on the single host Jenkins' memory comes out of the budget of the instance 'instanceType' sizes (give 'instanceMemoryMiB' for a type the app does not know), or set 'hosts' to 2 or more.",
  },
} as const satisfies Record<string, ContextKeySpec>;

export type ContextKey = keyof typeof CONTEXT_KEY_SPECS;

/** Each key by its own name, for the reader: `CONTEXT_KEYS.hosts` is `'hosts'`. */
export const CONTEXT_KEYS = Object.freeze(
  Object.fromEntries(Object.keys(CONTEXT_KEY_SPECS).map((key) => [key, key])),
) as { readonly [K in ContextKey]: K };

const KNOWN_KEYS = Object.keys(CONTEXT_KEY_SPECS) as ContextKey[];

/** The keys that mean something only on `layout`. */
export function keysOnlyFor(layout: 'single' | 'fleet'): ContextKey[] {
  return KNOWN_KEYS.filter((key) => CONTEXT_KEY_SPECS[key].layout === layout);
}

/** Why `key` means nothing on the layout it was not made for (its spec's `elsewhere`). */
export function elsewhere(key: ContextKey): string {
  const spec: ContextKeySpec = CONTEXT_KEY_SPECS[key];
  return spec.layout === 'both' ? '' : spec.elsewhere;
}

/**
 * Keys this app does not read but others own: CDK's feature flags (`@aws-cdk/core:...`), its own
 * settings (`aws:cdk:...`, `aws-cdk:...`), lookups cached in cdk.context.json
 * (`vpc-provider:account=...`), and the plain keys the CDK CLI writes into cdk.json itself
 * (`cdk acknowledge`, `cdk cli-telemetry`). None of them is ever reported.
 */
export function isCdkOwnKey(key: string): boolean {
  return /[:/]/.test(key) || key.startsWith('@') || key.startsWith('cdk-') || key.startsWith('aws-cdk') || CDK_CLI_PLAIN_KEYS.has(key);
}
const CDK_CLI_PLAIN_KEYS: ReadonlySet<string> = new Set(['acknowledged-issue-numbers', 'cli-telemetry']);

/** What the given keys hold that this app does not read. */
export interface UnknownContextKeys {
  /** Close to a known key (a typo, another case, `-` for camelCase): each with the keys it may mean. */
  readonly misspelled: ReadonlyArray<{ readonly key: string; readonly candidates: readonly ContextKey[] }>;
  /** Far from every known key, and not CDK's: the app ignores them, and synth says so. */
  readonly ignored: readonly string[];
}

/** Sorts `given` (every context key the app was given) into what the app reads and what it does not. */
export function classifyContextKeys(given: Iterable<string>): UnknownContextKeys {
  const misspelled: Array<{ key: string; candidates: ContextKey[] }> = [];
  const ignored: string[] = [];
  for (const key of given) {
    if ((KNOWN_KEYS as readonly string[]).includes(key) || isCdkOwnKey(key)) continue;
    const candidates = closeKnownKeys(key);
    if (candidates.length > 0) misspelled.push({ key, candidates });
    else ignored.push(key);
  }
  return { misspelled, ignored };
}

/**
 * The known keys `key` may be a slip for, closest first: the same letters ignoring case and
 * `-`/`_`/`.` (`instance-type`, `Hosts`), a few edits away (a quarter of the key's length, at
 * least one: `instanceTypo`, `hsots`), or the start or whole of a longer key (`instance`, `hostsCount`).
 */
export function closeKnownKeys(key: string): ContextKey[] {
  const given = folded(key);
  if (given === '') return [];
  return KNOWN_KEYS.map((known) => ({ known, target: folded(known) }))
    .map(({ known, target }) => ({ known, target, distance: editDistance(given, target) }))
    .filter(
      ({ target, distance }) =>
        distance <= Math.max(1, Math.floor(target.length / 4)) ||
        (given.length >= 3 && target.startsWith(given)) ||
        (target.length >= 3 && given.startsWith(target)),
    )
    .sort((a, b) => a.distance - b.distance || a.known.localeCompare(b.known))
    .slice(0, 3)
    .map(({ known }) => known);
}

function folded(key: string): string {
  return key.toLowerCase().replace(/[-_.\s]/g, '');
}

/**
 * Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`: the optimal
 * string alignment distance, so that a swapped pair (`hsots`) costs one edit, as a typist makes it.
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_row, i) => Array.from({ length: cols }, (_col, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The path of the generated reference, from the project root. */
export const CONTEXT_KEYS_DOC = ['docs', 'context-keys.md'] as const;

const LAYOUT_TEXT: Record<Layout, string> = { both: 'both', single: 'single host only', fleet: 'fleet only' };

/** docs/context-keys.md, as generated from `CONTEXT_KEY_SPECS`. */
export function renderContextKeysReference(): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  const rows = KNOWN_KEYS.map((key) => {
    const spec: ContextKeySpec = CONTEXT_KEY_SPECS[key];
    return `| \`${key}\` | ${cell(spec.default)} | ${LAYOUT_TEXT[spec.layout]} | ${cell(spec.meaning)} |`;
  });
  return [
    '# Context keys',
    '',
    '<!-- Generated from lib/context-keys.ts by `npx tsx scripts/context-keys-doc.ts`; edit that list, not this file. -->',
    '',
    'Every setting of the stack is a CDK context key, in `cdk.json` or on the command line',
    '(`npx cdk deploy -c key=value`). Synth checks each one and fails, naming the key and the value,',
    'on a value it cannot use, and on a key set for the layout it does not apply to (a fleet key with',
    '`hosts` 1, a single-host key with `hosts` > 1). Values that may hold a credential (a URL with a',
    'password, a token) are never echoed: the message says where the credential was instead.',
    '',
    'A key close to one of these (another case, `instance-type`, `instanceTypo`, `host`) fails synth',
    "with 'did you mean …'. Any other key the app does not read is ignored with a synth warning;",
    "CDK's own keys (`@aws-cdk/…` feature flags, `aws:cdk:…`, lookups cached in `cdk.context.json`,",
    '`acknowledged-issue-numbers`, `cli-telemetry`) pass silently.',
    '',
    '| key | default | applies to | meaning |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}
