/**
 * `ec2-bluegreen` on a fleet stack (output `FleetTarget`): each command is one SendCommand by
 * tag, with the stack's `MaxConcurrency` (or `--max-concurrency`) and `MaxErrors` 0, followed
 * host by host (cli/roll-out.ts). A deploy or rollback that succeeded on every host is recorded
 * in the fleet's release parameter, as the custom resource records its own, and then reaches
 * the hosts that joined the fleet while it ran (SSM resolved the tag when it was sent). The
 * fleet's Jenkins deploys through this same code (bundled; `--fleet-from-env --recorded-by jenkins`).
 */
import { GetParameterCommand, PutParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { FLEET_RELEASE_UNSET } from '../lib/contract.js';
import { fleetFailureMessage, type FleetRelease, nextFleetRelease, parseFleetRelease, releaseLabel, renderFleetRelease, rolledBackFleetRelease } from '../lib/deploy/fleet.js';
import type { FailureContext } from '../lib/deploy/invocation.js';
import { DEFAULT_DEPLOY_SETTINGS } from '../lib/deploy/defaults.js';
import { recordedKeys, uploadedKey } from '../lib/deploy/retention.js';
import type { CliRequest, RecordedBy, Requester } from './args.js';
import { type CheckedArtifact, formatBytes, prepareArtifact } from './artifact.js';
import type { Clients } from './clients.js';
import {
  catchUpCommandInput,
  documentCommandInput,
  type DocumentRequest,
  fleetHosts,
  READ_ONLY_MAX_CONCURRENCY,
  requireFleetOnline,
  send,
  type SendSettings,
} from './command.js';
import { CLI_EXIT_CODES, CliError } from './errors.js';
import { agreement, formatFleetHistory, formatFleetStatus, hostOutputLine, type HostStatus, rollOutExitCode } from './fleet-outcome.js';
import { isStatusLine, parseHistory, parseStatus } from './outcome.js';
import { livePolling } from './follow.js';
import { keepRecordedJars } from './retention.js';
import { followRollOut, type FollowedRollOut } from './roll-out.js';
import { fleetName, targetOptions, type FleetStackTarget } from './stack.js';
import { note, requester, type Terminal } from './terminal.js';

/**
 * SendCommand's delivery timeout for a roll-out. It runs from the send for every host, also for
 * those waiting their turn behind `MaxConcurrency`, so it must cover the whole queue.
 */
export const FLEET_DELIVERY_TIMEOUT_SECONDS = 3600;

type Request = Exclude<CliRequest, { command: 'help' }>;

/** Runs `request` on the fleet; resolves to the exit code. `checked` is a deploy's artifact, checked before any AWS call. */
export async function runOnFleet(
  request: Request,
  target: FleetStackTarget,
  clients: Clients,
  terminal: Terminal,
  started: number,
  checked?: CheckedArtifact,
): Promise<number> {
  const say = (text: string) => note(terminal, text);
  const { ssm } = clients;
  const fleet = target.fleet;
  const tag = `${fleet.tagKey}=${fleet.tagValue}`;
  const writes = request.command === 'deploy' || request.command === 'rollback';

  // Before any upload: no Online host, or a record that cannot be read, fails with nothing sent.
  const hosts = await requireFleetOnline(ssm, target);
  const online = hosts.filter((host) => host.PingStatus === 'Online');
  const offline = hosts.filter((host) => host.PingStatus !== 'Online');
  let recorded: FleetRelease | undefined;
  let recordProblem: string | undefined;
  if (writes) {
    recorded = await readRelease(ssm, target);
  } else if (request.command === 'status') {
    recorded = await readRelease(ssm, target).catch((error: CliError) => {
      recordProblem = error.message;
      return undefined;
    });
  }
  const deliveryTimeoutSeconds = writes ? FLEET_DELIVERY_TIMEOUT_SECONDS : DEFAULT_DEPLOY_SETTINGS.deliveryTimeoutSeconds;
  if (offline.length > 0 && writes) {
    say(
      `${offline.map((host) => `${host.InstanceId} (${host.PingStatus})`).join(', ')} carr${offline.length === 1 ? 'ies' : 'y'} tag ${tag} but ` +
        `${offline.length === 1 ? 'is' : 'are'} not Online: SSM holds a place in the roll-out for ${offline.length === 1 ? 'it' : 'them'} ` +
        `until ${offline.length === 1 ? 'it answers' : 'they answer'} or the delivery timeout (${deliveryTimeoutSeconds}s) ends.`,
    );
  }

  const maxConcurrency = writes ? (request.maxConcurrency ?? fleet.maxConcurrency) : READ_ONLY_MAX_CONCURRENCY;
  const who: Requester = request.command === 'deploy' || request.command === 'rollback' ? request : {};
  const settings: SendSettings = { deliveryTimeoutSeconds, requestedBy: who.requestedBy ?? requester(), maxConcurrency };
  const recordedBy = who.recordedBy ?? 'cli';
  let documentRequest: DocumentRequest;
  let version: string | undefined;
  let artifact: { readonly uri: string; readonly sha256: string; readonly version: string } | undefined;
  if (request.command === 'deploy') {
    if (checked === undefined) throw new Error('runOnFleet: a deploy needs its checked artifact');
    const prepared = await prepareArtifact(clients.s3, target, checked, request, say);
    artifact = prepared;
    // An upload of a jar the record names (a role that cannot look first uploads again) resets its tags.
    if (prepared.bytes !== undefined && recorded !== undefined && target.artifactUploadLocation !== undefined) {
      const key = uploadedKey(target.artifactUploadLocation, prepared.uri);
      if (key !== undefined && recordedKeys(target.artifactUploadLocation, recorded).includes(key)) {
        await keepRecordedJars(clients.s3, target.artifactUploadLocation, recorded, recorded, say);
      }
    }
    version = prepared.version;
    documentRequest = { command: 'deploy', artifact: prepared, healthTimeoutSeconds: request.healthTimeoutSeconds };
    say(
      `deploying ${prepared.source}${prepared.bytes === undefined ? '' : ` (${formatBytes(prepared.bytes)})`} as ${prepared.version}, ` +
        `sha256 ${prepared.sha256.slice(0, 12)}, to the hosts of ${fleetName(target)}`,
    );
  } else if (request.command === 'rollback') {
    // A host the Auto Scaling group added booted the recorded release alone: with no standby, it
    // deploys the release recorded before it, so the rollback reaches every host.
    const previous =
      recorded === undefined || recorded.previousArtifactUri === '' || recorded.previousSha256 === ''
        ? undefined
        : { artifactUri: recorded.previousArtifactUri, sha256: recorded.previousSha256, version: recorded.previousVersion };
    documentRequest = { command: 'rollback', healthTimeoutSeconds: request.healthTimeoutSeconds, previous };
  } else {
    documentRequest = { command: request.command };
  }

  const input = documentCommandInput(target, documentRequest, settings);
  const commandId = await send(ssm, input, request.command);
  if (writes) {
    say(
      `command ${commandId} sent to the hosts tagged ${tag} (${online.length} Online), ${maxConcurrency} at a time, stopping at the first ` +
        `failure; following it (Ctrl-C stops following, not the ${request.command})`,
    );
  }
  const context: FailureContext = { deliveryTimeoutSeconds };
  const follow = (id: string, recorded = false) => followFleetCommand(clients, terminal, target, id, context, writes, request.command, recorded);
  const followed = await follow(commandId);

  if (followed.outcome.kind === 'failed') {
    if (request.command === 'status') printStatus(request.json, followed, target, { release: recorded, problem: recordProblem }, terminal);
    if (request.command === 'history') printHistory(request.json, request.limit, followed, terminal);
    const succeeded = followed.outcome.succeeded;
    say(failureText(followed, commandId, target, request.command === 'deploy' ? `Roll-out of ${version}` : `${capitalized(request.command)} across the fleet`, context));
    if (succeeded.length > 0 && request.command === 'deploy') say(undoAdvice(succeeded, recorded, target));
    if (succeeded.length > 0 && request.command === 'rollback') {
      say(`Rolled back: ${succeeded.join(', ')} (each serves its former warm standby now). Nothing was recorded; 'ec2-bluegreen status' shows what each host serves.`);
    }
    return rollOutExitCode(failedHosts(followed), followed.hosts.length, context);
  }

  const hostStatuses = followed.hosts.map((host) => hostStatus(host.instanceId, host.stdout, commandId));
  switch (request.command) {
    case 'status':
      printStatus(request.json, followed, target, { release: recorded, problem: recordProblem }, terminal);
      return CLI_EXIT_CODES.ok;
    case 'history':
      printHistory(request.json, request.limit, followed, terminal);
      return CLI_EXIT_CODES.ok;
    case 'deploy': {
      const release = await record(clients, target, say, (current) =>
        nextFleetRelease(current, { artifactUri: artifact!.uri, sha256: artifact!.sha256, version: artifact!.version, ...recordedNow(commandId, recordedBy) }),
      );
      const code = await catchUp(release, commandId, followed, hostStatuses, { clients, terminal, target, context, settings, follow });
      if (code !== CLI_EXIT_CODES.ok) return code;
      break;
    }
    case 'rollback': {
      const current = await readRelease(ssm, target);
      const next = current === undefined ? undefined : rolledBackFleetRelease(current, recordedNow(commandId, recordedBy));
      const serves = new Set(hostStatuses.map((host) => (host.status === undefined || host.status.live === null ? undefined : host.status.slots[host.status.live].sha256)));
      if (next === undefined || serves.size !== 1 || !serves.has(next.sha256)) {
        say(rollbackNotRecorded(current, next, hostStatuses, target));
        break;
      }
      await record(clients, target, say, () => next);
      const code = await catchUp(next, commandId, followed, hostStatuses, { clients, terminal, target, context, settings, follow });
      if (code !== CLI_EXIT_CODES.ok) return code;
      break;
    }
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  terminal.out(`ec2-bluegreen: ${request.command} done in ${seconds}s: ${resultText(hostStatuses)}`);
  if (target.siteUrl !== undefined) terminal.out(`ec2-bluegreen: site: ${target.siteUrl}`);
  return CLI_EXIT_CODES.ok;
}

/**
 * Follows one command on the fleet, printing per-host progress for deploys and rollbacks.
 * `recorded`: the release is recorded already (a catch-up), which what Ctrl-C prints says.
 */
async function followFleetCommand(
  clients: Clients,
  terminal: Terminal,
  target: FleetStackTarget,
  commandId: string,
  context: FailureContext,
  showsProgress: boolean,
  command: Request['command'],
  recorded: boolean,
): Promise<FollowedRollOut> {
  // Ctrl-C, or SIGTERM from a CI system aborting the build (Jenkins does so): say what goes on.
  const stopFollowing = (signal: NodeJS.Signals) => {
    const release = !showsProgress
      ? ''
      : recorded
        ? '. Its release is recorded; hosts that fail it keep the release they booted with: once it is done, run the same ' +
          `${command} again (a no-op on the hosts that have it) if one failed.`
        : `. Its release is not recorded for hosts the Auto Scaling group adds: once it is done, run the same ${command} again (a no-op on the hosts that have it), which records it.`;
    note(terminal, `stopped following command ${commandId}; it goes on on the hosts. Follow it with: aws ssm list-command-invocations --command-id ${commandId}${release}`);
    process.exit(signal === 'SIGTERM' ? CLI_EXIT_CODES.terminated : CLI_EXIT_CODES.interrupted);
  };
  process.once('SIGINT', stopFollowing);
  process.once('SIGTERM', stopFollowing);
  return followRollOut(
    {
      ...livePolling(clients),
      onProgress: (line) => {
        if (showsProgress) terminal.out(line);
      },
      onHostStdout: (instanceId, line) => {
        if (showsProgress && !isStatusLine(line)) terminal.out(hostOutputLine(instanceId, line));
      },
      onHostStderr: (instanceId, line) => terminal.err(hostOutputLine(instanceId, line)),
      onNote: (text) => note(terminal, text),
    },
    { commandId, outputLogGroupName: target.outputLogGroupName, context },
  ).finally(() => {
    process.removeListener('SIGINT', stopFollowing);
    process.removeListener('SIGTERM', stopFollowing);
  });
}

/** The recorded release; undefined when none is yet. Throws a `CliError` (nothing sent) when it cannot be read. */
export async function readRelease(ssm: SSMClient, target: FleetStackTarget): Promise<FleetRelease | undefined> {
  const name = target.fleet.releaseParameterName;
  let value: string | undefined;
  try {
    value = (await ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value;
  } catch (error) {
    const { name: type, message } = error as Error;
    throw new CliError(
      `cannot read the fleet's release record ${name} (${type}: ${message}). Nothing was sent. It needs ssm:GetParameter on it; ` +
        'a stack deployed from this project creates it.',
      CLI_EXIT_CODES.aws,
    );
  }
  const release = parseFleetRelease(value);
  if (release === undefined && value?.trim() !== FLEET_RELEASE_UNSET) {
    throw new CliError(
      `the fleet's release record ${name} holds ${JSON.stringify((value ?? '').slice(0, 200))}, not KEY=VALUE lines with artifactUri and sha256. ` +
        'Nothing was sent. Put a release there (aws ssm put-parameter --overwrite, the keys of lib/contract.ts FLEET_RELEASE_KEYS), or ' +
        `'${FLEET_RELEASE_UNSET}' if none is deployed yet.`,
      CLI_EXIT_CODES.aws,
    );
  }
  return release;
}

function recordedNow(commandId: string, recordedBy: RecordedBy): { readonly commandId: string; readonly recordedAt: string; readonly recordedBy: string } {
  return { commandId, recordedAt: new Date().toISOString(), recordedBy };
}

/** Records the release computed from the record as it is now (re-read: someone may have written it meanwhile). */
async function record(clients: Clients, target: FleetStackTarget, say: (text: string) => void, next: (current: FleetRelease | undefined) => FleetRelease): Promise<FleetRelease> {
  const { ssm } = clients;
  const name = target.fleet.releaseParameterName;
  let release: FleetRelease | undefined;
  let before: FleetRelease | undefined;
  try {
    before = await readRelease(ssm, target);
    release = next(before);
    await ssm.send(new PutParameterCommand({ Name: name, Value: renderFleetRelease(release), Type: 'String', Overwrite: true }));
  } catch (error) {
    const { name: type, message } = error as Error;
    throw new CliError(
      `every host runs ${release?.version || 'the release'}, but recording it in ${name} failed (${type}: ${message}), so hosts the Auto Scaling ` +
        'group adds would boot the previous release. Run the same command again: a no-op on every host, and it records the release.',
      CLI_EXIT_CODES.aws,
    );
  }
  say(`recorded ${releaseLabel(release)} in ${name}: hosts the Auto Scaling group adds boot it`);
  // The record's jars must outlive the upload location's lifecycle rule while it names them.
  await keepRecordedJars(clients.s3, target.artifactUploadLocation, before, release, say);
  return release;
}

interface CatchUpContext {
  readonly clients: Clients;
  readonly terminal: Terminal;
  readonly target: FleetStackTarget;
  readonly context: FailureContext;
  readonly settings: SendSettings;
  readonly follow: (commandId: string, recorded: boolean) => Promise<FollowedRollOut>;
}

/**
 * Deploys the release just recorded to hosts that carry the fleet's tag but were not targets of
 * the roll-out (the Auto Scaling group added them while it ran), as the custom resource does,
 * until no such host is left. A host that is not Online is left to its boot, which reads the
 * record just written. Adds what the caught-up hosts serve to `statuses`; resolves to the exit code.
 */
async function catchUp(release: FleetRelease, rollOutCommandId: string, rollOut: FollowedRollOut, statuses: HostStatus[], deps: CatchUpContext): Promise<number> {
  const say = (text: string) => note(deps.terminal, text);
  const covered = new Set(rollOut.hosts.map((host) => host.instanceId));
  const label = releaseLabel(release);
  for (;;) {
    const hosts = await fleetHosts(deps.clients.ssm, deps.target).catch((error: Error) => {
      throw new CliError(
        `the release is recorded, but asking which hosts joined the fleet meanwhile failed (${error.name}: ${error.message}; it needs ssm:DescribeInstanceInformation). ` +
          `Hosts that joined during the roll-out may still run the previous release: run the same command again (a no-op on the others) to bring them to ${label}.`,
        CLI_EXIT_CODES.aws,
      );
    });
    const joined = hosts.filter((host) => host.InstanceId !== undefined && !covered.has(host.InstanceId));
    for (const host of joined.filter((entry) => entry.PingStatus !== 'Online')) {
      covered.add(host.InstanceId!);
      say(`${host.InstanceId} joined the fleet during the roll-out but is ${host.PingStatus}: its boot deploys the recorded release ${label}`);
    }
    const toSend = joined.filter((host) => host.PingStatus === 'Online').map((host) => host.InstanceId!);
    if (toSend.length === 0) return CLI_EXIT_CODES.ok;
    const input = catchUpCommandInput(deps.target, release, rollOutCommandId, toSend, deps.settings);
    const commandId = await send(deps.clients.ssm, input, 'deploy');
    say(`${toSend.join(', ')} joined the fleet during the roll-out; command ${commandId} deploys the recorded release ${label} to ${toSend.length === 1 ? 'it' : 'them'}`);
    toSend.forEach((id) => covered.add(id));
    const followed = await deps.follow(commandId, true);
    if (followed.outcome.kind === 'failed') {
      say(failureText(followed, commandId, deps.target, `Catch-up of ${label} to hosts that joined during the roll-out`, deps.context));
      say(`${label} stays recorded: the hosts of the roll-out run it, and hosts the Auto Scaling group adds boot it. Run the same command again to retry the hosts that failed.`);
      return rollOutExitCode(failedHosts(followed), followed.hosts.length, deps.context);
    }
    statuses.push(...followed.hosts.map((host) => hostStatus(host.instanceId, host.stdout, commandId)));
  }
}

function failedHosts(followed: FollowedRollOut): Array<{ readonly instanceId: string; readonly report: FollowedRollOut['hosts'][number]['report'] }> {
  if (followed.outcome.kind !== 'failed') return [];
  const failed = new Set(followed.outcome.failed.map((entry) => entry.InstanceId));
  return followed.hosts.filter((host) => failed.has(host.instanceId)).map(({ instanceId, report }) => ({ instanceId, report }));
}

/**
 * The custom resource's failure message (failed hosts with their status and output tail, the
 * hosts never touched), without its sentence on the hosts that succeeded: that one speaks of the
 * stack's rollback, and this command says what to run instead.
 */
function failureText(followed: FollowedRollOut, commandId: string, target: FleetStackTarget, subject: string, context: FailureContext): string {
  const outcome = followed.outcome;
  if (outcome.kind !== 'failed') return '';
  return fleetFailureMessage({
    summary: outcome.summary,
    commandId,
    subject,
    failedHosts: failedHosts(followed),
    succeeded: [],
    untouched: outcome.untouched,
    context,
    outputLogGroupName: target.outputLogGroupName,
  });
}

/** What to run to put the recorded release back on the hosts that took a failed roll-out's release. */
export function undoAdvice(succeeded: readonly string[], recorded: FleetRelease | undefined, target: FleetStackTarget): string {
  const took = `Took the new release: ${succeeded.join(', ')}.`;
  if (recorded === undefined) {
    return `${took} Nothing was recorded. To put the previous jar back on ${succeeded.length === 1 ? 'it' : 'them'}, deploy it again: npx ec2-bluegreen deploy JAR ${targetOptions(target)}.`;
  }
  const label = releaseLabel(recorded);
  return (
    `${took} Nothing was recorded: ${target.fleet.releaseParameterName} still names ${label}, which hosts the Auto Scaling group adds boot. ` +
    `To put ${label} back (a fast switch to the warm standby where the new release went live, a no-op elsewhere): ` +
    `npx ec2-bluegreen deploy ${recorded.artifactUri} --sha256 ${recorded.sha256}${recorded.version === '' ? '' : ` --version ${recorded.version}`} ${targetOptions(target)}`
  );
}

/** Why a successful rollback was not recorded, and how to record what the hosts serve. */
function rollbackNotRecorded(current: FleetRelease | undefined, next: FleetRelease | undefined, hosts: readonly HostStatus[], target: FleetStackTarget): string {
  const name = target.fleet.releaseParameterName;
  const why =
    current === undefined
      ? `${name} records no release yet`
      : next === undefined
        ? `${name} names no release before ${releaseLabel(current)}`
        : `the hosts do not all serve the release recorded before it, ${releaseLabel(next)} (${agreement(hosts)})`;
  const boots = current === undefined ? "the stack's first release" : releaseLabel(current);
  return (
    `every host rolled back, but nothing was recorded: ${why}. Hosts the Auto Scaling group adds boot ${boots}. ` +
    `To record what the hosts serve, deploy that jar again (a no-op on every host that serves it): npx ec2-bluegreen deploy JAR|s3://BUCKET/KEY --version V ${targetOptions(target)}`
  );
}

function hostStatus(instanceId: string, stdout: readonly string[], commandId: string): HostStatus {
  const status = parseStatus(stdout);
  return status === undefined
    ? { instanceId, problem: `no readable status; read it with: aws ssm get-command-invocation --command-id ${commandId} --instance-id ${instanceId}` }
    : { instanceId, status };
}

/** `v2 is live on 3 hosts`, or how the hosts disagree. */
function resultText(hosts: readonly HostStatus[]): string {
  const text = agreement(hosts);
  const all = /^all (\d+) hosts serve (.+)$/.exec(text);
  return all === null ? text : `${all[2]} is live on ${all[1]} host${all[1] === '1' ? '' : 's'}`;
}

function printStatus(
  json: boolean,
  followed: FollowedRollOut,
  target: FleetStackTarget,
  recorded: { readonly release?: FleetRelease; readonly problem?: string },
  terminal: Terminal,
): void {
  const hosts = followed.hosts.map((host) =>
    host.ran ? hostStatus(host.instanceId, host.stdout, '-') : { instanceId: host.instanceId, problem: `not run (${host.report.Status ?? 'unknown'})` },
  );
  if (json) {
    terminal.out(JSON.stringify({ release: recorded.release ?? null, hosts: hosts.map((host) => ({ instanceId: host.instanceId, status: host.status ?? null })) }));
    return;
  }
  const where = { stackName: target.stackName, tag: `${target.fleet.tagKey}=${target.fleet.tagValue}`, ...(target.siteUrl === undefined ? {} : { siteUrl: target.siteUrl }) };
  formatFleetStatus(hosts, where, recorded).forEach((line) => terminal.out(line));
}

function printHistory(json: boolean, limit: number | undefined, followed: FollowedRollOut, terminal: Terminal): void {
  const hosts = followed.hosts.map((host) => {
    const entries = host.ran ? parseHistory(host.stdout) : undefined;
    return entries === undefined
      ? { instanceId: host.instanceId, problem: host.ran ? 'no readable history' : `not run (${host.report.Status ?? 'unknown'})` }
      : { instanceId: host.instanceId, entries: limit === undefined ? entries : entries.slice(-limit) };
  });
  if (json) terminal.out(JSON.stringify(hosts.map((host) => ({ instanceId: host.instanceId, entries: host.entries ?? null }))));
  else formatFleetHistory(hosts).forEach((line) => terminal.out(line));
}

function capitalized(text: string): string {
  return `${text[0]!.toUpperCase()}${text.slice(1)}`;
}
