/**
 * bluegreen-pipeline deploy to a fleet (the fleet's own Jenkins), through a stand-in for the AWS
 * CLI that answers as SSM and S3 would.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { FLEET_RELEASE_KEYS, FLEET_RELEASE_UNSET, FLEET_TAG_KEY } from '../../lib/contract.js';
import { casc, fleetSettings, globalEnv, httpsJob, PIPELINE, run, scratch, settings } from './support.js';

/**
 * A stand-in for the AWS CLI: records each call (argv as a JSON line in FAKE_AWS_LOG) and
 * answers as the AWS CLI does with `--output json`, from the scenario in FAKE_AWS_SCENARIO.
 * `send-command` by tag starts the roll-out (commandId), by instance ids the catch-up
 * (catchUpCommandId). Each `list-commands` moves that command one round on;
 * `list-command-invocations` shows that round. `describe-instance-information` answers the
 * fleet's hosts in one list, as the CLI does after following NextToken itself.
 */
const FAKE_AWS = `#!/usr/bin/env node
const fs = require('node:fs');
const args = process.argv.slice(2);
fs.appendFileSync(process.env.FAKE_AWS_LOG, JSON.stringify(args) + '\\n');
const scenario = JSON.parse(fs.readFileSync(process.env.FAKE_AWS_SCENARIO, 'utf8'));
const fail = (message, code) => { process.stderr.write(message + '\\n'); process.exit(code); };
const globals = {};
let rest = args;
while (rest.length > 0 && rest[0].startsWith('--')) { globals[rest[0].slice(2)] = rest[1]; rest = rest.slice(2); }
if (globals.output !== 'json') fail('aws (stand-in): answers JSON only; call it with --output json', 2);
if (globals.region !== scenario.region) fail('aws (stand-in): expected --region ' + scenario.region, 2);
const [service, operation, ...options] = rest;
const option = (name) => { const at = options.indexOf(name); return at < 0 ? undefined : options[at + 1]; };
const answer = (value) => process.stdout.write(JSON.stringify(value, null, 4) + '\\n');
const values = (name) => { const at = options.indexOf(name); if (at < 0) return []; const end = options.findIndex((o, i) => i > at && o.startsWith('--')); return options.slice(at + 1, end < 0 ? undefined : end); };
const commandId = () => {
  const id = option('--command-id');
  if (scenario.commands[id] === undefined) fail('An error occurred (InvalidCommandId) when calling the operation: ', 254);
  return id;
};
const roundFile = (id) => process.env.FAKE_AWS_SCENARIO + '.' + id + '.round';
const round = (id) => (fs.existsSync(roundFile(id)) ? Number(fs.readFileSync(roundFile(id), 'utf8')) : 0);
const current = (id) => scenario.commands[id].rounds[Math.max(round(id) - 1, 0)];
switch (service + ' ' + operation) {
  case 's3 cp': {
    const positional = [];
    for (let at = 0; at < options.length; at++) {
      if (options[at] === '--content-type') at++;
      else if (!options[at].startsWith('--')) positional.push(options[at]);
    }
    fs.copyFileSync(positional[0], scenario.uploadedTo);
    break;
  }
  case 'ssm send-command': {
    const instanceIds = values('--instance-ids');
    if (options.includes('--targets') === instanceIds.length > 0) fail('An error occurred (ValidationException) when calling the SendCommand operation: name either Targets or InstanceIds', 254);
    if (scenario.sendFails) fail('An error occurred (AccessDeniedException) when calling the SendCommand operation: not authorized', 254);
    const id = instanceIds.length > 0 ? scenario.catchUpCommandId : scenario.commandId;
    if (scenario.commands[id] === undefined) fail('aws (stand-in): the scenario has no command to send to ' + instanceIds.join(' '), 2);
    answer({ Command: { CommandId: id, DocumentName: option('--document-name'), DocumentVersion: option('--document-version'),
      Comment: option('--comment'), Parameters: JSON.parse(option('--parameters')), InstanceIds: instanceIds, Targets: [],
      Status: 'Pending', StatusDetails: 'Pending', MaxConcurrency: option('--max-concurrency') ?? '50', MaxErrors: option('--max-errors') ?? '0',
      TimeoutSeconds: Number(option('--timeout-seconds')), TargetCount: instanceIds.length, CompletedCount: 0, ErrorCount: 0, DeliveryTimedOutCount: 0 } });
    break;
  }
  case 'ssm list-commands': {
    const id = commandId();
    fs.writeFileSync(roundFile(id), String(Math.min(round(id) + 1, scenario.commands[id].rounds.length)));
    const { status, hosts } = current(id);
    const statuses = Object.values(hosts);
    answer({ Commands: [{ CommandId: id, Status: status, StatusDetails: status, TargetCount: statuses.length,
      CompletedCount: statuses.filter((s) => !['Pending', 'InProgress'].includes(s)).length,
      ErrorCount: statuses.filter((s) => s === 'Failed').length }] });
    break;
  }
  case 'ssm list-command-invocations': {
    const id = commandId();
    answer({ CommandInvocations: Object.entries(current(id).hosts).map(([instance, status]) => ({ CommandId: id,
      InstanceId: instance, InstanceName: '', DocumentName: 'doc', DocumentVersion: '$LATEST', Status: status, StatusDetails: status,
      StandardOutputUrl: '', StandardErrorUrl: '', CommandPlugins: [] })) });
    break;
  }
  case 'ssm get-command-invocation': {
    const id = commandId();
    const instance = option('--instance-id');
    answer({ CommandId: id, InstanceId: instance, PluginName: 'deploy', ResponseCode: 0, Status: 'Success',
      StatusDetails: 'Success', StandardOutputContent: '', StandardErrorContent: '', ...(scenario.commands[id].details[instance] ?? {}) });
    break;
  }
  case 'ssm describe-instance-information':
    if (options.includes('--no-paginate') || options.includes('--max-items')) fail('aws (stand-in): that would answer only part of the fleet', 2);
    if (scenario.describeFails) fail('An error occurred (AccessDeniedException) when calling the DescribeInstanceInformation operation: not authorized', 254);
    answer({ InstanceInformationList: option('--filters') !== scenario.fleetFilter ? [] : Object.entries(scenario.fleetHosts).map(([instance, ping]) => ({
      InstanceId: instance, PingStatus: ping, LastPingDateTime: '2026-11-25T10:00:00.000000+00:00', AgentVersion: '3.3.1345.0',
      IsLatestVersion: false, PlatformType: 'Linux', PlatformName: 'Amazon Linux', ResourceType: 'EC2Instance', IPAddress: '10.0.1.5' })) });
    break;
  case 'ssm get-parameter':
    if (option('--name') !== scenario.releaseParameter) fail('An error occurred (ParameterNotFound) when calling the GetParameter operation: ', 254);
    answer({ Parameter: { Name: scenario.releaseParameter, Type: 'String', Value: scenario.currentRecord, Version: 1,
      LastModifiedDate: '2026-11-25T10:00:00.000000+00:00', ARN: 'arn:aws:ssm:eu-west-1:111111111111:parameter' + scenario.releaseParameter, DataType: 'text' } });
    break;
  case 'ssm put-parameter':
    answer({ Version: 2, Tier: 'Standard' });
    break;
  default:
    fail('aws (stand-in): unexpected call: ' + args.join(' '), 2);
}
`;

describe('bluegreen-pipeline deploy to a fleet, against a stand-in AWS CLI', () => {
  const fleetBin = mkdtempSync(join(scratch, 'fleet-bin-'));
  writeFileSync(join(fleetBin, 'aws'), FAKE_AWS);
  chmodSync(join(fleetBin, 'aws'), 0o755);
  const COMMAND_ID = '0b9a3c1e-5d2f-4e6a-9c8b-7f1e2d3c4b5a';
  const CATCH_UP_COMMAND_ID = '7c2d4e6f-8a0b-4c1d-9e2f-3a4b5c6d7e8f';
  const VERSION = '2.7.0';
  const OLD_SHA256 = 'e'.repeat(64);
  const OLD_URI = `${fleetSettings.uploadLocation}${OLD_SHA256}.jar`;

  /** A release record (FLEET_RELEASE_KEYS lines) for `sha256`, with its previous release. */
  function recordOf(sha256: string, version: string, commandId: string, previous: [string, string, string]): string {
    const values: Record<keyof typeof FLEET_RELEASE_KEYS, string> = {
      artifactUri: `${fleetSettings.uploadLocation}${sha256}.jar`,
      sha256,
      version,
      commandId,
      recordedAt: '2026-11-20T09:00:00Z',
      recordedBy: 'cloudformation',
      previousArtifactUri: previous[0],
      previousSha256: previous[1],
      previousVersion: previous[2],
    };
    return (Object.keys(FLEET_RELEASE_KEYS) as Array<keyof typeof FLEET_RELEASE_KEYS>).map((key) => `${FLEET_RELEASE_KEYS[key]}=${values[key]}`).join('\n');
  }

  type Round = [status: string, hosts: Record<string, string>];
  interface Scenario {
    /** The roll-out by tag, round by round. */
    readonly rounds: Round[];
    readonly details?: Record<string, object>;
    readonly sendFails?: boolean;
    /** What the release parameter holds before the deploy. @default FLEET_RELEASE_UNSET */
    readonly currentRecord?: string | ((sha256: string) => string);
    /**
     * The hosts with the fleet's tag once the roll-out ended, and their SSM ping status.
     * @default - the roll-out's hosts, Online: none joined meanwhile
     */
    readonly fleetHosts?: Record<string, string>;
    readonly describeFails?: boolean;
    /** The catch-up by instance ids, if one is sent. */
    readonly catchUp?: { readonly rounds: Round[]; readonly details?: Record<string, object> };
  }

  const asRounds = (rounds: Round[]) => rounds.map(([status, hosts]) => ({ status, hosts }));

  /** A checkout with a built jar; the deploy with Jenkins' global variables from the fleet's JCasC. */
  function deployToFleet(scenario: Scenario, env: Record<string, string> = {}, abortAfterMs?: number) {
    const dir = mkdtempSync(join(scratch, 'fleet-'));
    const workspace = join(dir, 'workspace');
    mkdirSync(join(workspace, 'build', 'libs'), { recursive: true });
    const jar = join(workspace, 'build', 'libs', 'app.jar');
    writeFileSync(jar, `jar ${randomBytes(8).toString('hex')}`);
    const sha256 = createHash('sha256').update(readFileSync(jar)).digest('hex');
    const log = join(dir, 'aws-calls');
    writeFileSync(log, '');
    const scenarioFile = join(dir, 'scenario.json');
    writeFileSync(
      scenarioFile,
      JSON.stringify({
        region: fleetSettings.region,
        commandId: COMMAND_ID,
        catchUpCommandId: CATCH_UP_COMMAND_ID,
        uploadedTo: join(dir, 'uploaded.jar'),
        commands: {
          [COMMAND_ID]: { rounds: asRounds(scenario.rounds), details: scenario.details ?? {} },
          ...(scenario.catchUp === undefined
            ? {}
            : { [CATCH_UP_COMMAND_ID]: { rounds: asRounds(scenario.catchUp.rounds), details: scenario.catchUp.details ?? {} } }),
        },
        sendFails: scenario.sendFails ?? false,
        fleetFilter: `Key=tag:${FLEET_TAG_KEY},Values=Ec2BlueGreen`,
        fleetHosts: scenario.fleetHosts ?? Object.fromEntries(Object.keys(scenario.rounds.at(-1)![1]).map((host) => [host, 'Online'])),
        describeFails: scenario.describeFails ?? false,
        releaseParameter: fleetSettings.releaseParameter,
        currentRecord:
          typeof scenario.currentRecord === 'function' ? scenario.currentRecord(sha256) : (scenario.currentRecord ?? FLEET_RELEASE_UNSET),
      }),
    );
    const jenkinsEnv = globalEnv(casc(settings({ ...httpsJob, ...fleetSettings })));
    // An abort is what Jenkins does to a build's shell step: SIGTERM, then it waits for the exit.
    const [command, args] =
      abortAfterMs === undefined
        ? [PIPELINE, ['deploy']]
        : ['bash', ['-c', `${JSON.stringify(PIPELINE)} deploy & pid=$!; sleep ${abortAfterMs / 1000}; kill -TERM $pid; wait $pid`]];
    const result = run(command, args, {
      cwd: workspace,
      env: {
        ...process.env,
        PATH: `${fleetBin}:${process.env.PATH}`,
        FAKE_AWS_LOG: log,
        FAKE_AWS_SCENARIO: scenarioFile,
        ...jenkinsEnv,
        // What Jenkins sets for a build of the job that a push triggered.
        DEPLOY_MODE: 'configured',
        JOB_NAME: 'shop',
        BUILD_NUMBER: '42',
        APP_VERSION: VERSION,
        FLEET_POLL_SECONDS: '0',
        ...env,
      },
    });
    const calls = readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as string[]);
    const uploaded = existsSync(join(dir, 'uploaded.jar')) ? readFileSync(join(dir, 'uploaded.jar')) : undefined;
    return { ...result, calls, jarPath: jar, jar: readFileSync(jar), sha256, uploaded };
  }

  /** The operation of a call, after the global options (`ssm send-command`). */
  const operationOf = (call: string[]) => call.slice(4, 6).join(' ');
  const optionOf = (call: string[], name: string) => call[call.indexOf(name) + 1];
  /** The values of a list option (`--instance-ids a b`): up to the next option. */
  const valuesOf = (call: string[], name: string) => {
    const rest = call.slice(call.indexOf(name) + 1);
    const end = rest.findIndex((arg) => arg.startsWith('--'));
    return end < 0 ? rest : rest.slice(0, end);
  };
  const callsOf = (calls: string[][], operation: string) => calls.filter((call) => operationOf(call) === operation);
  const recordIn = (calls: string[][]) => optionOf(callsOf(calls, 'ssm put-parameter').at(-1)!, '--value')!.split('\n');
  const hostLines = (stdout: string) => stdout.split('\n').filter((line) => line.startsWith('bluegreen-pipeline: host '));

  const rolling: Round[] = [
    ['InProgress', { 'i-0aaa': 'InProgress', 'i-0bbb': 'Pending', 'i-0ccc': 'Pending' }],
    ['InProgress', { 'i-0aaa': 'InProgress', 'i-0bbb': 'Pending', 'i-0ccc': 'Pending' }],
    ['InProgress', { 'i-0aaa': 'Success', 'i-0bbb': 'InProgress', 'i-0ccc': 'Pending' }],
    ['InProgress', { 'i-0aaa': 'Success', 'i-0bbb': 'Success', 'i-0ccc': 'InProgress' }],
    ['Success', { 'i-0aaa': 'Success', 'i-0bbb': 'Success', 'i-0ccc': 'Success' }],
  ];

  test('uploads the jar by its sha256, sends the document to the fleet tag one host at a time with MaxErrors 0, follows each host, then records the release', () => {
    // WHEN a push-triggered build deploys on the fleet's Jenkins (DEPLOY_MODE=configured), over 2.6.0
    const result = deployToFleet({ rounds: rolling, currentRecord: recordOf(OLD_SHA256, '2.6.0', 'cmd-0', ['', '', '']) });

    // THEN
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const uri = `${fleetSettings.uploadLocation}${result.sha256}.jar`;
    for (const call of result.calls) expect(call.slice(0, 4)).toEqual(['--region', fleetSettings.region, '--output', 'json']);
    expect(result.calls.map(operationOf)).toEqual([
      's3 cp',
      'ssm send-command',
      ...rolling.flatMap(() => ['ssm list-commands', 'ssm list-command-invocations']),
      'ssm get-parameter',
      'ssm put-parameter',
      // AND then it asks which hosts carry the tag now: none joined, so nothing more is sent
      'ssm describe-instance-information',
    ]);
    // AND the jar went to the upload location under its sha256, as the operator command uploads it
    const [upload, send] = result.calls;
    expect(upload!.slice(-2)).toEqual([result.jarPath, uri]);
    expect(result.uploaded?.equals(result.jar)).toBe(true);
    // AND the document went to the tag, not a list of instances, with the release as parameters
    expect(optionOf(send!, '--document-name')).toBe(fleetSettings.documentName);
    expect(optionOf(send!, '--document-version')).toBe('$LATEST');
    expect(optionOf(send!, '--targets')).toBe(`Key=tag:${FLEET_TAG_KEY},Values=Ec2BlueGreen`);
    expect(send).not.toContain('--instance-ids');
    expect(optionOf(send!, '--max-concurrency')).toBe('1');
    expect(optionOf(send!, '--max-errors')).toBe('0');
    expect(JSON.parse(optionOf(send!, '--parameters')!)).toEqual({
      action: ['deploy'],
      artifactUri: [uri],
      sha256: [result.sha256],
      version: [VERSION],
    });
    expect(optionOf(send!, '--cloud-watch-output-config')).toBe(
      `CloudWatchOutputEnabled=true,CloudWatchLogGroupName=${fleetSettings.outputLogGroup}`,
    );
    expect(optionOf(send!, '--comment')).toBe(`Jenkins shop #42: deploy ${VERSION}`);
    // AND a line for each host as it starts and as it finishes
    expect(hostLines(result.stdout)).toEqual([
      'bluegreen-pipeline: host i-0aaa: InProgress (0 of 3 hosts deployed)',
      'bluegreen-pipeline: host i-0bbb: Pending (0 of 3 hosts deployed)',
      'bluegreen-pipeline: host i-0ccc: Pending (0 of 3 hosts deployed)',
      'bluegreen-pipeline: host i-0aaa: Success (1 of 3 hosts deployed)',
      'bluegreen-pipeline: host i-0bbb: InProgress (1 of 3 hosts deployed)',
      'bluegreen-pipeline: host i-0bbb: Success (2 of 3 hosts deployed)',
      'bluegreen-pipeline: host i-0ccc: InProgress (2 of 3 hosts deployed)',
      'bluegreen-pipeline: host i-0ccc: Success (3 of 3 hosts deployed)',
    ]);
    // AND the release is recorded for the hosts the group adds, in the contract's keys
    const put = callsOf(result.calls, 'ssm put-parameter')[0]!;
    expect(optionOf(put, '--name')).toBe(fleetSettings.releaseParameter);
    expect(put).toContain('--overwrite');
    const record = optionOf(put, '--value')!.split('\n');
    expect(record.map((line) => line.split('=')[0])).toEqual(Object.values(FLEET_RELEASE_KEYS));
    expect(record).toEqual([
      `artifactUri=${uri}`,
      `sha256=${result.sha256}`,
      `version=${VERSION}`,
      `commandId=${COMMAND_ID}`,
      expect.stringMatching(/^recordedAt=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      'recordedBy=jenkins',
      // AND the release it replaced, every host's warm standby now
      `previousArtifactUri=${OLD_URI}`,
      `previousSha256=${OLD_SHA256}`,
      'previousVersion=2.6.0',
    ]);
    expect(result.stdout).toContain(`every host runs ${VERSION} (command ${COMMAND_ID})`);
  });

  test.each<[string, Scenario['currentRecord'], string[]]>([
    ['nothing was recorded yet (FLEET_RELEASE_UNSET)', FLEET_RELEASE_UNSET, ['', '', '']],
    [
      'the same jar is recorded already (a rebuild): the record keeps its previous release',
      (sha256) => recordOf(sha256, VERSION, 'cmd-1', [OLD_URI, OLD_SHA256, '2.6.0']),
      [OLD_URI, OLD_SHA256, '2.6.0'],
    ],
  ])('the previous release it records when %s', (_case, currentRecord, previous) => {
    const result = deployToFleet({ rounds: rolling, currentRecord });
    expect(result.code, result.stderr).toBe(0);
    const record = recordIn(result.calls);
    expect(record.slice(-3)).toEqual([`previousArtifactUri=${previous[0]}`, `previousSha256=${previous[1]}`, `previousVersion=${previous[2]}`]);
  });

  test('when host 2 fails: names it with its status and output tail, names the host never reached and the one that took it, records nothing, and exits with its code', () => {
    // GIVEN a roll-out that SSM stops at the second host (MaxErrors 0)
    const output = Array.from({ length: 30 }, (_, line) => `engine line ${line + 1}`).join('\n');
    const result = deployToFleet({
      rounds: [
        ['InProgress', { 'i-0aaa': 'InProgress', 'i-0bbb': 'Pending', 'i-0ccc': 'Pending' }],
        ['InProgress', { 'i-0aaa': 'Success', 'i-0bbb': 'InProgress', 'i-0ccc': 'Pending' }],
        ['Failed', { 'i-0aaa': 'Success', 'i-0bbb': 'Failed', 'i-0ccc': 'Cancelled' }],
      ],
      details: {
        'i-0bbb': {
          Status: 'Failed',
          StatusDetails: 'Failed',
          ResponseCode: 5,
          StandardOutputContent: output,
          StandardErrorContent: 'bluegreen: error: the new release did not become healthy within 120s',
        },
        'i-0ccc': { Status: 'Cancelled', StatusDetails: 'Terminated', ResponseCode: -1 },
      },
    });

    // THEN
    expect(result.code).toBe(5);
    expect(result.calls.map(operationOf)).not.toContain('ssm put-parameter');
    expect(hostLines(result.stdout)).toContain('bluegreen-pipeline: host i-0bbb: Failed (1 of 3 hosts deployed)');
    const details = result.calls.filter((call) => operationOf(call) === 'ssm get-command-invocation');
    expect(details.map((call) => optionOf(call, '--instance-id'))).toEqual(['i-0bbb', 'i-0ccc']);
    expect(result.stderr).toContain(`the roll-out of ${VERSION} ended Failed (command ${COMMAND_ID})`);
    expect(result.stderr).toContain('host i-0bbb failed: Failed, exit code 5');
    expect(result.stderr).toContain('    | bluegreen: error: the new release did not become healthy within 120s');
    expect(result.stderr).toContain('    | engine line 30');
    expect(result.stderr).not.toContain('engine line 10\n');
    expect(result.stderr).not.toContain('host i-0ccc failed');
    expect(result.stderr).toContain('never reached, still on the previous release: i-0ccc');
    expect(result.stderr).toContain(`took ${VERSION}: i-0aaa`);
    expect(result.stderr).toContain(`${fleetSettings.releaseParameter} still records the previous release`);
    expect(result.stderr).toContain(`CloudWatch log group ${fleetSettings.outputLogGroup}, streams ${COMMAND_ID}/INSTANCE_ID/*`);
  });

  test('a command that SSM calls a success without any host is a failure: nothing was deployed, nothing recorded', () => {
    const result = deployToFleet({ rounds: [['Success', {}]] });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`no host carries tag:${FLEET_TAG_KEY}=Ec2BlueGreen, so nothing was deployed`);
    expect(result.calls.map(operationOf)).not.toContain('ssm put-parameter');
  });

  test('a refused send-command fails the build before anything is deployed or recorded', () => {
    const result = deployToFleet({ rounds: rolling, sendFails: true });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('AccessDeniedException');
    expect(result.stderr).toMatch(/sending .* to tag:BlueGreenFleet=Ec2BlueGreen failed .*; nothing was deployed/);
    expect(result.calls.map(operationOf)).toEqual(['s3 cp', 'ssm send-command']);
  });

  test('an aborted build stops following the roll-out, says it goes on in SSM, and records nothing', () => {
    // GIVEN a roll-out that does not end before Jenkins aborts the build (SIGTERM)
    const endless: Round[] = [['InProgress', { 'i-0aaa': 'InProgress', 'i-0bbb': 'Pending' }]];
    const started = Date.now();

    // WHEN
    const result = deployToFleet({ rounds: endless }, { FLEET_POLL_SECONDS: '1' }, 3000);

    // THEN
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(result.code).toBe(143);
    expect(result.stderr).toContain(`stopped following command ${COMMAND_ID} (the build was aborted). The roll-out goes on in SSM, but its release is not recorded`);
    expect(result.calls.map(operationOf)).not.toContain('ssm put-parameter');
  });

  describe('a host the Auto Scaling group added while the roll-out ran (SSM picked the targets when it was sent)', () => {
    /** The roll-out's three hosts, the one that joined meanwhile, and one that joined but is not Online yet. */
    const grownFleet = { 'i-0aaa': 'Online', 'i-0bbb': 'Online', 'i-0ccc': 'Online', 'i-0ddd': 'Online', 'i-0eee': 'ConnectionLost' };
    const catchingUp: Round[] = [
      ['InProgress', { 'i-0ddd': 'InProgress' }],
      ['Success', { 'i-0ddd': 'Success' }],
    ];

    test('gets the release too: once recorded, one catch-up by instance id, to that host only, with the same parameters, followed to the end', () => {
      // GIVEN a roll-out to three hosts, during which i-0ddd joined the fleet (and i-0eee, not Online yet)
      // WHEN
      const result = deployToFleet({ rounds: rolling, fleetHosts: grownFleet, catchUp: { rounds: catchingUp } });

      // THEN
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.calls.map(operationOf)).toEqual([
        's3 cp',
        'ssm send-command',
        ...rolling.flatMap(() => ['ssm list-commands', 'ssm list-command-invocations']),
        'ssm get-parameter',
        // AND the release is recorded before the catch-up, so a host that joins from now on boots it
        'ssm put-parameter',
        'ssm describe-instance-information',
        'ssm send-command',
        ...catchingUp.flatMap(() => ['ssm list-commands', 'ssm list-command-invocations']),
      ]);
      // AND the fleet is looked up by its tag, every page of it
      const [describe] = callsOf(result.calls, 'ssm describe-instance-information');
      expect(optionOf(describe!, '--filters')).toBe(`Key=tag:${FLEET_TAG_KEY},Values=Ec2BlueGreen`);
      // AND the catch-up goes to the host that joined and is Online, by id, not by tag
      const [rollOut, catchUp] = callsOf(result.calls, 'ssm send-command');
      expect(valuesOf(catchUp!, '--instance-ids')).toEqual(['i-0ddd']);
      expect(catchUp).not.toContain('--targets');
      expect(optionOf(catchUp!, '--comment')).toBe(`catch-up of ${COMMAND_ID}: deploy ${VERSION}`);
      for (const name of ['--document-name', '--document-version', '--parameters', '--timeout-seconds', '--cloud-watch-output-config', '--max-errors']) {
        expect(optionOf(catchUp!, name), name).toBe(optionOf(rollOut!, name));
      }
      expect(JSON.parse(optionOf(catchUp!, '--parameters')!)).toEqual({
        action: ['deploy'],
        artifactUri: [`${fleetSettings.uploadLocation}${result.sha256}.jar`],
        sha256: [result.sha256],
        version: [VERSION],
      });
      // AND it is followed as the roll-out is, host by host
      expect(callsOf(result.calls, 'ssm list-commands').slice(-catchingUp.length).map((call) => optionOf(call, '--command-id'))).toEqual(
        catchingUp.map(() => CATCH_UP_COMMAND_ID),
      );
      expect(hostLines(result.stdout).slice(-2)).toEqual([
        'bluegreen-pipeline: host i-0ddd: InProgress (0 of 1 hosts deployed)',
        'bluegreen-pipeline: host i-0ddd: Success (1 of 1 hosts deployed)',
      ]);
      // AND the host that is not Online is left to its boot, with a note
      expect(result.stdout).toContain(
        `host i-0eee joined the fleet during the roll-out but is ConnectionLost in SSM, not Online: skipped (when it boots, it deploys the recorded ${VERSION})`,
      );
      expect(result.stdout).toContain(`the hosts that joined during the roll-out run ${VERSION} too (command ${CATCH_UP_COMMAND_ID})`);
      // AND the record names the roll-out
      expect(recordIn(result.calls)).toContain(`commandId=${COMMAND_ID}`);
    });

    test('a host that joined but is not Online yet is skipped with a note: no catch-up, its boot reads the recorded release', () => {
      const result = deployToFleet({ rounds: rolling, fleetHosts: { ...grownFleet, 'i-0ddd': 'Inactive' } });
      expect(result.code, result.stderr).toBe(0);
      expect(callsOf(result.calls, 'ssm send-command')).toHaveLength(1);
      expect(result.calls.map(operationOf).at(-1)).toBe('ssm describe-instance-information');
      expect(result.stdout).toContain('host i-0ddd joined the fleet during the roll-out but is Inactive in SSM, not Online: skipped');
    });

    test('a failing catch-up fails the build with the host’s exit code, naming it with its output tail; the release stays recorded', () => {
      // GIVEN the deploy on the host that joined does not get healthy
      const output = Array.from({ length: 30 }, (_, line) => `engine line ${line + 1}`).join('\n');
      const result = deployToFleet({
        rounds: rolling,
        fleetHosts: grownFleet,
        catchUp: {
          rounds: [
            ['InProgress', { 'i-0ddd': 'InProgress' }],
            ['Failed', { 'i-0ddd': 'Failed' }],
          ],
          details: {
            'i-0ddd': {
              Status: 'Failed',
              StatusDetails: 'Failed',
              ResponseCode: 5,
              StandardOutputContent: output,
              StandardErrorContent: 'bluegreen: error: the new release did not become healthy within 120s',
            },
          },
        },
      });

      // THEN
      expect(result.code).toBe(5);
      expect(callsOf(result.calls, 'ssm send-command')).toHaveLength(2);
      expect(callsOf(result.calls, 'ssm put-parameter')).toHaveLength(1);
      expect(hostLines(result.stdout)).toContain('bluegreen-pipeline: host i-0ddd: Failed (0 of 1 hosts deployed)');
      const details = callsOf(result.calls, 'ssm get-command-invocation');
      expect(details.map((call) => [optionOf(call, '--command-id'), optionOf(call, '--instance-id')])).toEqual([[CATCH_UP_COMMAND_ID, 'i-0ddd']]);
      expect(result.stderr).toContain(
        `every host of the roll-out (command ${COMMAND_ID}) runs ${VERSION} and ${fleetSettings.releaseParameter} records it, but the catch-up of the hosts that joined the fleet meanwhile ended Failed (command ${CATCH_UP_COMMAND_ID})`,
      );
      expect(result.stderr).toContain('host i-0ddd failed: Failed, exit code 5');
      expect(result.stderr).toContain('    | bluegreen: error: the new release did not become healthy within 120s');
      expect(result.stderr).toContain('    | engine line 30');
      expect(result.stderr).not.toContain('engine line 10\n');
      expect(result.stderr).toContain(`streams ${CATCH_UP_COMMAND_ID}/INSTANCE_ID/*`);
      expect(result.stderr).toContain('Run this build again');
      expect(result.stdout).not.toContain('the hosts that joined during the roll-out run');
    });

    test('when SSM will not list the fleet, the build fails: the release is recorded, but a host that joined may be behind', () => {
      const result = deployToFleet({ rounds: rolling, describeFails: true });
      expect(result.code).toBe(1);
      expect(callsOf(result.calls, 'ssm put-parameter')).toHaveLength(1);
      expect(callsOf(result.calls, 'ssm send-command')).toHaveLength(1);
      expect(result.stderr).toContain('AccessDeniedException');
      expect(result.stderr).toContain(`asking SSM which hosts carry tag:${FLEET_TAG_KEY}=Ec2BlueGreen failed`);
      expect(result.stderr).toContain('ssm:DescribeInstanceInformation');
    });

    test('an aborted build stops following the catch-up and says the release is recorded and the catch-up goes on in SSM', () => {
      const endless: Round[] = [['InProgress', { 'i-0ddd': 'InProgress' }]];
      const result = deployToFleet(
        { rounds: rolling.slice(-1), fleetHosts: grownFleet, catchUp: { rounds: endless } },
        { FLEET_POLL_SECONDS: '1' },
        3000,
      );
      expect(result.code).toBe(143);
      expect(result.stderr).toContain(
        `stopped following command ${CATCH_UP_COMMAND_ID} (the build was aborted). The catch-up goes on in SSM and ${VERSION} is recorded`,
      );
      expect(callsOf(result.calls, 'ssm put-parameter')).toHaveLength(1);
    });
  });

  test.each<[string, Record<string, string>, RegExp]>([
    ['no fleet settings (not the fleet’s Jenkins)', { FLEET_DOCUMENT: '' }, /DEPLOY_MODE=fleet needs FLEET_DOCUMENT/],
    ['a target that is not a tag', { FLEET_TARGET: 'i-0123456789abcdef0' }, /FLEET_TARGET='i-0123456789abcdef0' is not tag:KEY=VALUE/],
    ['a max concurrency SSM would refuse', { FLEET_MAX_CONCURRENCY: '0' }, /FLEET_MAX_CONCURRENCY='0' is not a number of hosts/],
    ['DEPLOY_MODE=host on the fleet’s Jenkins', { DEPLOY_MODE: 'host' }, /this is the fleet's Jenkins, on an instance without the engine/],
  ])('fails with exit 2 before any AWS call on %s', (_case, env, message) => {
    const result = deployToFleet({ rounds: rolling }, env);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.calls).toEqual([]);
  });
});

