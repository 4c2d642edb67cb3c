/**
 * `ec2-bluegreen`: runs the stack's deploy document from a shell and follows it to its end.
 * Wires the pure parts (args, outcome, output) to the AWS calls (stack, artifact, command,
 * follow); `runCli` returns the exit code, the entry point (bin/ec2-bluegreen.mjs) exits with it.
 * A fleet stack (output FleetTarget) is handed to cli/fleet.ts; this file runs the one host.
 */
import { DEFAULT_DEPLOY_SETTINGS } from '../lib/deploy/defaults.js';
import type { FailureContext } from '../lib/deploy/invocation.js';
import { type CliRequest, parseCommandLine } from './args.js';
import { type CheckedArtifact, checkArtifact, formatBytes, prepareArtifact } from './artifact.js';
import { createClients } from './clients.js';
import { documentCommandInput, type DocumentRequest, requireOnline, send } from './command.js';
import { CLI_EXIT_CODES, CliError } from './errors.js';
import { followCommand, livePolling } from './follow.js';
import { HELP } from './help.js';
import { exitCodeOf, failureReason, formatHistory, formatStatus, isStatusLine, parseHistory, parseStatus, resultLine } from './outcome.js';
import { runOnFleet } from './fleet.js';
import { describeStack, fleetFromEnvironment, type HostStackTarget } from './stack.js';
import { note, processTerminal, requester, type Terminal } from './terminal.js';

export type { Terminal };

/** Runs one command line; resolves to the exit code. Never throws. */
export async function runCli(argv: readonly string[], terminal: Terminal = processTerminal): Promise<number> {
  try {
    const request = parseCommandLine(argv);
    if (request.command === 'help') {
      HELP.trimEnd().split('\n').forEach((line) => terminal.out(line));
      return CLI_EXIT_CODES.ok;
    }
    return await run(request, terminal);
  } catch (error) {
    if (error instanceof CliError) {
      note(terminal, error.message);
      return error.exitCode;
    }
    note(terminal, `unexpected error: ${(error as Error).stack ?? String(error)}`);
    return CLI_EXIT_CODES.unexpected;
  }
}

async function run(request: Exclude<CliRequest, { command: 'help' }>, terminal: Terminal): Promise<number> {
  const started = Date.now();
  // Everything this machine can check comes before the first AWS call, and before the SDK asks
  // for a region or credentials: the target's variables, then the jar (a wrong path fails as
  // that, also where no AWS is configured).
  // --fleet-from-env: the FLEET_* variables stand for the stack's outputs (the fleet's Jenkins).
  const fromEnvironment = request.fleetFromEnvironment ? fleetFromEnvironment(process.env) : undefined;
  const artifact: CheckedArtifact | undefined = request.command === 'deploy' ? checkArtifact(request.artifact, request) : undefined;
  const clients = await createClients(request.region ?? fromEnvironment?.region);
  const stack = fromEnvironment?.target ?? (await describeStack(clients.cloudFormation, request.stackName!, clients.region));
  if (stack.fleet !== undefined) return runOnFleet(request, stack, clients, terminal, started, artifact);
  const target: HostStackTarget = stack;
  if ((request.command === 'deploy' || request.command === 'rollback') && request.maxConcurrency !== undefined) {
    throw new CliError(
      `--max-concurrency is for a fleet, and stack ${target.stackName} is one host (${target.instanceId}). Nothing was sent.`,
      CLI_EXIT_CODES.usage,
    );
  }
  // Before any upload: a stopped or unregistered instance fails fast.
  await requireOnline(clients.ssm, target);

  let documentRequest: DocumentRequest;
  let version: string | undefined;
  if (request.command === 'deploy') {
    const prepared = await prepareArtifact(clients.s3, target, artifact!, request, (text) => note(terminal, text));
    version = prepared.version;
    documentRequest = { command: 'deploy', artifact: prepared, healthTimeoutSeconds: request.healthTimeoutSeconds };
    note(
      terminal,
      `deploying ${prepared.source}${prepared.bytes === undefined ? '' : ` (${formatBytes(prepared.bytes)})`} as ${prepared.version}, ` +
        `sha256 ${prepared.sha256.slice(0, 12)}, to ${target.instanceId} of stack ${target.stackName}`,
    );
  } else if (request.command === 'rollback') {
    documentRequest = { command: 'rollback', healthTimeoutSeconds: request.healthTimeoutSeconds };
  } else {
    documentRequest = { command: request.command };
  }

  const requestedBy = (request.command === 'deploy' || request.command === 'rollback' ? request.requestedBy : undefined) ?? requester();
  const settings = { deliveryTimeoutSeconds: DEFAULT_DEPLOY_SETTINGS.deliveryTimeoutSeconds, requestedBy };
  const input = documentCommandInput(target, documentRequest, settings);
  const commandId = await send(clients.ssm, input, request.command);
  const showsProgress = request.command === 'deploy' || request.command === 'rollback';
  if (showsProgress) note(terminal, `command ${commandId} sent to ${target.instanceId}; following it (Ctrl-C stops following, not the ${request.command})`);

  const stopFollowing = () => {
    note(
      terminal,
      `stopped following command ${commandId}; it goes on on the host. Follow it with: ` +
        `aws ssm get-command-invocation --command-id ${commandId} --instance-id ${target.instanceId}, or run 'ec2-bluegreen status'.`,
    );
    process.exit(CLI_EXIT_CODES.interrupted);
  };
  process.once('SIGINT', stopFollowing);

  const context: FailureContext = { deliveryTimeoutSeconds: settings.deliveryTimeoutSeconds };
  const followed = await followCommand(
    {
      ...livePolling(clients),
      onStdout: (line) => {
        if (showsProgress && !isStatusLine(line)) terminal.out(line);
      },
      onStderr: (line) => terminal.err(line),
      onNote: (text) => note(terminal, text),
    },
    { commandId, instanceId: target.instanceId, outputLogGroupName: target.outputLogGroupName, context },
  ).finally(() => process.removeListener('SIGINT', stopFollowing));

  const exitCode = exitCodeOf(followed.report, context);
  if (exitCode !== CLI_EXIT_CODES.ok) {
    note(
      terminal,
      failureReason(
        { command: request.command, report: followed.report, commandId, instanceId: target.instanceId, version, outputLogGroupName: target.outputLogGroupName },
        context,
      ),
    );
    return exitCode;
  }

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  switch (request.command) {
    case 'deploy':
    case 'rollback': {
      const result = resultLine(followed.stdout);
      terminal.out(`ec2-bluegreen: ${request.command} done in ${seconds}s${result === undefined ? '' : `: ${result}`}`);
      if (target.siteUrl !== undefined) terminal.out(`ec2-bluegreen: site: ${target.siteUrl}`);
      return exitCode;
    }
    case 'status': {
      const status = parseStatus(followed.stdout);
      if (status === undefined) throw unreadable('status', commandId, target.instanceId);
      if (request.json) terminal.out(JSON.stringify(status));
      else formatStatus(status, target).forEach((line) => terminal.out(line));
      return exitCode;
    }
    case 'history': {
      const entries = parseHistory(followed.stdout);
      if (entries === undefined) throw unreadable('history', commandId, target.instanceId);
      const shown = request.limit === undefined ? entries : entries.slice(-request.limit);
      if (request.json) terminal.out(JSON.stringify(shown));
      else formatHistory(shown).forEach((line) => terminal.out(line));
      return exitCode;
    }
  }
}

function unreadable(what: string, commandId: string, instanceId: string): CliError {
  return new CliError(
    `the host's ${what} came back unreadable (not the JSON 'bluegreen ${what} --json' prints; cut at SSM's output limit?). ` +
      `Read it with: aws ssm get-command-invocation --command-id ${commandId} --instance-id ${instanceId}`,
    CLI_EXIT_CODES.unexpected,
  );
}
