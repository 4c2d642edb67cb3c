import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { FLEET_RELEASE_KEYS, FLEET_RELEASE_UNSET, HOST_PATHS, defaultReleaseLabel } from '../lib/contract.js';
import { JENKINS_TOOLS_DIR } from '../lib/constructs/bluegreen-host.js';
import { engineMemorySettings } from '../lib/memory-budget.js';
import { projectPath } from '../lib/paths.js';
import { onlyResource, renderValue, resourceById, synthesize } from './constructs/synth.js';

// GIVEN the user data as synthesized, with CloudFormation references shown as <Name>.
const { template, stack } = synthesize();
const instance = onlyResource(template, 'AWS::EC2::Instance');
const userData = renderValue(instance.properties.UserData);
const manifest = renderValue(resourceById(template, 'AWS::SSM::Parameter', 'HostFirstRelease').properties.Value);
const parameterId = resourceById(template, 'AWS::SSM::Parameter', 'HostFirstRelease').logicalId;

const scratch = mkdtempSync(join(tmpdir(), 'bluegreen-userdata-'));
const userDataFile = join(scratch, 'user-data.sh');
writeFileSync(userDataFile, userData);

function run(command: string, args: string[], input?: string) {
  return spawnSync(command, args, { encoding: 'utf8', input });
}

/** Runs `snippet` in bash after sourcing the user data (which then does not boot anything). */
function withUserData(snippet: string, script = userData) {
  const file = join(mkdtempSync(join(scratch, 'run-')), 'user-data.sh');
  writeFileSync(file, script);
  return run('bash', ['-c', `set -Eeuo pipefail; source ${JSON.stringify(file)}; ${snippet}`]);
}

describe('rendered user data', () => {
  test('passes bash -n', () => {
    const result = run('bash', ['-n', userDataFile]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  test('passes shellcheck, as does its source in assets/userdata', () => {
    for (const file of [userDataFile, projectPath('assets', 'userdata', 'bootstrap.sh')]) {
      const result = run('shellcheck', ['--shell=bash', file]);
      expect(result.stdout).toBe('');
      expect(result.status).toBe(0);
    }
  });

  test('is the bash script from assets/userdata with every placeholder filled, within the 16 KB user-data limit', () => {
    expect(userData.startsWith('#!/bin/bash\n')).toBe(true);
    expect(userData).not.toMatch(/@@[A-Z0-9_]+@@/);
    expect(Buffer.byteLength(userData)).toBeLessThan(16 * 1024);
    const source = readFileSync(projectPath('assets', 'userdata', 'bootstrap.sh'), 'utf8');
    expect(userData.split('\n').length).toBe(source.split('\n').length);
  });

  test('names this stack, region, the instance to signal, its first-release parameter and the contract paths', () => {
    expect(userData).toContain("readonly STACK_NAME='<AWS::StackName>'");
    expect(userData).toContain("readonly REGION='<AWS::Region>'");
    expect(userData).toContain(`readonly SIGNAL_RESOURCE='${instance.logicalId}'`);
    expect(userData).toContain(`readonly FIRST_RELEASE_PARAMETER='<${parameterId}>'`);
    expect(userData).toContain(`readonly ENGINE_DIR='${HOST_PATHS.libDir}'`);
    expect(userData).toContain(`readonly ENGINE_COMMAND='${HOST_PATHS.command}'`);
    expect(userData).toContain(`readonly ENGINE_CONFIG='${HOST_PATHS.configFile}'`);
    expect(userData).toContain(`readonly SLOT_UNIT='${HOST_PATHS.slotUnit}'`);
    expect(userData).toContain("readonly SITE_PORT='80'");
    const jenkinsSettingsId = resourceById(template, 'AWS::SSM::Parameter', 'HostJenkinsSettings').logicalId;
    expect(userData).toContain(`readonly JENKINS_SETTINGS_PARAMETER='<${jenkinsSettingsId}>'`);
    expect(userData).toContain(`readonly JENKINS_TOOLS_DIR='${JENKINS_TOOLS_DIR}'`);
    expect(userData).toContain("readonly HOST_ROLE='single'");
    expect(userData).toContain("readonly FLEET_RELEASE_PARAMETER=''");
  });

  test('holds nothing that changes with a release, so a new artifact or engine never reboots the host', () => {
    expect(userData).not.toContain(stack.host!.artifact.sha256);
    expect(userData).not.toMatch(/[0-9a-f]{64}\.(zip|jar)/);
  });

  test('installs what the issue lists: aws-cfn-bootstrap first, Nginx, Java 17 for the app, a pinned Jenkins LTS whose key the repository names', () => {
    expect(userData).toContain('dnf install -y aws-cfn-bootstrap');
    expect(userData).toContain('readonly APP_JAVA_PACKAGE=java-17-amazon-corretto-headless');
    expect(userData).toMatch(/\nreadonly JENKINS_PACKAGE=jenkins-\d+\.\d+\.\d+\n/);
    expect(userData).toMatch(/dnf install -y nginx .*"\$APP_JAVA_PACKAGE" "\$JENKINS_JAVA_PACKAGE" "\$JENKINS_PACKAGE"/);
    expect(userData).toContain('readonly JENKINS_REPO_FILE_URL=https://pkg.jenkins.io/rpm-stable/jenkins.repo');
    // The repository definition names its signing key; a separate import only adds a URL that can move.
    expect(userData).not.toContain('rpm --import');
  });

  test('main runs the steps in order: signal helpers first, the TLS certificate and engine init before Nginx, the app before Jenkins, Jenkins configured before it starts and verified before the signal', () => {
    // The single host's steps: main's own, then those of boot_single_host, which main runs for HOST_ROLE=single.
    const body = (name: string) => new RegExp(`\\n${name}\\(\\) \\{\\n([\\s\\S]*?)\\n\\}\\n`).exec(userData)![1]!;
    const stepsOf = (name: string) =>
      body(name)
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => /^[a-z_]+$/.test(line) || line.startsWith('signal_cloudformation'))
        .filter((line) => line !== 'esac');
    expect(body('main')).toContain('    single) boot_single_host ;;\n');
    const steps = [...stepsOf('main'), ...stepsOf('boot_single_host')];
    expect(steps).toEqual([
      'install_cfn_bootstrap',
      'install_packages',
      'ensure_swap',
      'select_java',
      'read_first_release',
      'install_engine',
      'install_tls_certificate',
      'start_nginx',
      'guard_metadata',
      'deploy_release',
      'configure_jenkins',
      'start_jenkins',
      'verify_jenkins',
      'check_site',
      'signal_cloudformation 0 "serving version ${ARTIFACT_VERSION} through Nginx; Jenkins configured as code"',
    ]);
    expect(userData).toMatch(/start_nginx\(\) \{\n\s+"\$ENGINE_COMMAND" init\n\s+systemctl enable --now nginx\n/);
  });
});

describe('behaviour of its functions', () => {
  test('reads the first release the stack wrote into the parameter', () => {
    // GIVEN `aws ssm get-parameter` answering with the parameter's value from the template
    writeFileSync(join(scratch, 'manifest.txt'), manifest);
    const snippet = [
      `aws() { [[ "$*" == *"--name <${parameterId}>"* ]] && cat ${JSON.stringify(join(scratch, 'manifest.txt'))}; }`,
      'read_first_release',
      'printf "%s\\n" "$ENGINE_URI" "$ARTIFACT_URI" "$ARTIFACT_SHA256" "$ARTIFACT_VERSION" "$HEALTH_TIMEOUT"',
    ].join('; ');

    // WHEN
    const result = withUserData(snippet);

    // THEN
    expect(result.stderr).toBe('');
    const [engineUri, artifactUri, sha256, version, healthTimeout] = result.stdout.trim().split('\n');
    expect(engineUri).toMatch(/^s3:\/\/cdk-.*\.zip$/);
    expect(artifactUri).toMatch(/^s3:\/\/cdk-.*\.jar$/);
    expect(sha256).toBe(stack.host!.artifact.sha256);
    expect(version).toBe(stack.host!.artifact.version);
    expect(healthTimeout).toBe('120');
  });

  test("adds the stack's engine settings (the slots' memory budget for this instance type) to the configuration it installs", () => {
    // GIVEN the first-release parameter's value, and the engine bundle as the stack ships it
    const work = mkdtempSync(join(scratch, 'engine-'));
    writeFileSync(join(work, 'manifest.txt'), manifest);
    expect(spawnSync('zip', ['-q', '-r', join(work, 'engine.zip'), '.'], { cwd: projectPath('assets', 'instance') }).status).toBe(0);
    const config = join(work, 'etc', 'bluegreen.conf');
    const script = userData
      .replace(/readonly ENGINE_DIR='[^']*'/, `readonly ENGINE_DIR='${work}/lib'`)
      .replace(/readonly ENGINE_COMMAND='[^']*'/, `readonly ENGINE_COMMAND='${work}/bluegreen'`)
      .replace(/readonly ENGINE_CONFIG='[^']*'/, `readonly ENGINE_CONFIG='${config}'`);
    const standIns = [
      `aws() { if [[ $1 == ssm ]]; then cat ${JSON.stringify(join(work, 'manifest.txt'))}; else cp ${JSON.stringify(join(work, 'engine.zip'))} "\${@: -1}"; fi; }`,
      'systemctl() { :; }',
      // The unit goes to a scratch path, not /etc/systemd/system.
      `install() { if [[ \${@: -1} == /etc/systemd/* ]]; then command install "\${@:1:$#-1}" ${JSON.stringify(work)}/; else command install "$@"; fi; }`,
    ].join('\n');

    // WHEN
    const result = withUserData(`${standIns}\nread_first_release; install_engine`, script);

    // THEN the engine's own defaults, then the budget's keys, which win (a later line wins)
    expect(result.status, result.stderr).toBe(0);
    const expected = engineMemorySettings(stack.host!.memoryBudget);
    expect(expected).toEqual(['BLUEGREEN_SLOT_HEAP_MIB=320', 'BLUEGREEN_SLOT_MEMORY_MIB=448']);
    expect(readFileSync(config, 'utf8')).toBe(readFileSync(projectPath('assets', 'instance', 'etc', 'bluegreen.conf'), 'utf8') + expected.map((line) => `${line}\n`).join(''));
    expect(result.stdout).not.toContain('ignoring unknown key');
  });

  test('installs the TLS certificate and key from the secret the first-release parameter names, the key readable by root only', () => {
    // GIVEN a secret holding a certificate chain and a key, and scratch paths for /etc
    const dir = mkdtempSync(join(scratch, 'tls-'));
    const config = join(dir, 'bluegreen.conf');
    writeFileSync(config, 'BLUEGREEN_RUNNER=systemd\n');
    const pem = [
      '-----BEGIN CERTIFICATE-----', 'TEAFCERT', '-----END CERTIFICATE-----',
      '-----BEGIN CERTIFICATE-----', 'CHAINCERT', '-----END CERTIFICATE-----',
      '-----BEGIN PRIVATE KEY-----', 'SECRETKEYMATERIAL', '-----END PRIVATE KEY-----',
    ].join('\n');
    writeFileSync(join(dir, 'secret.txt'), pem);
    const script = userData
      .replace('readonly TLS_DIR=/etc/bluegreen/tls', `readonly TLS_DIR=${dir}/tls`)
      .replace(/readonly ENGINE_CONFIG='[^']*'/, `readonly ENGINE_CONFIG='${config}'`);

    // WHEN
    const result = withUserData(
      `aws() { [[ "$*" == *"--secret-id arn:tls"* ]] && cat ${JSON.stringify(join(dir, 'secret.txt'))}; }; TLS_SECRET=arn:tls; install_tls_certificate`,
      script,
    );

    // THEN
    expect(result.status, result.stderr).toBe(0);
    expect(readFileSync(join(dir, 'tls', 'cert.pem'), 'utf8')).toBe(pem.split('\n').slice(0, 6).join('\n') + '\n');
    expect(readFileSync(join(dir, 'tls', 'key.pem'), 'utf8')).toContain('SECRETKEYMATERIAL');
    expect(statSync(join(dir, 'tls', 'key.pem')).mode & 0o777).toBe(0o600);
    expect(result.stdout + result.stderr).not.toContain('SECRETKEYMATERIAL');
    expect(readFileSync(config, 'utf8')).toContain(`BLUEGREEN_NGINX_TLS_CERT=${dir}/tls/cert.pem\nBLUEGREEN_NGINX_TLS_KEY=${dir}/tls/key.pem\n`);
  });

  test('refuses a TLS secret without a private key, leaving no files', () => {
    const dir = mkdtempSync(join(scratch, 'tls-bad-'));
    const script = userData.replace('readonly TLS_DIR=/etc/bluegreen/tls', `readonly TLS_DIR=${dir}/tls`);
    const result = withUserData(
      `aws() { printf -- '-----BEGIN CERTIFICATE-----\\nX\\n-----END CERTIFICATE-----\\n'; }; TLS_SECRET=arn:tls; install_tls_certificate`,
      script,
    );
    expect(result.status).not.toBe(0);
    expect(result.stdout).toContain('must hold a PEM certificate and a PEM private key');
    expect(spawnSync('ls', ['-A', join(dir, 'tls')], { encoding: 'utf8' }).stdout).toBe('');
  });

  test('refuses a first-release parameter with a value missing', () => {
    const result = withUserData(`aws() { printf 'engineUri=s3://b/e.zip\\nartifactUri=s3://b/a.jar\\n'; }; read_first_release`);
    expect(result.status).not.toBe(0);
    expect(result.stdout).toContain('has no value for ARTIFACT_SHA256');
  });

  test('on any failure it signals CloudFormation with a failure whose unique id names the step, the line and the command, then exits non-zero', () => {
    // GIVEN a cfn-signal stand-in that records its arguments
    const recorder = join(scratch, 'cfn-signal');
    writeFileSync(recorder, `#!/bin/bash\nprintf '%s\\n' "$@" > ${JSON.stringify(join(scratch, 'signal-args'))}\n`);
    chmodSync(recorder, 0o755);
    const script = userData.replace('readonly CFN_SIGNAL=/opt/aws/bin/cfn-signal', `readonly CFN_SIGNAL=${recorder}`);

    // WHEN a step fails under the script's ERR trap
    const result = withUserData(`trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR; read_manifest() { false; }; read_manifest`, script);

    // THEN the stack's events (which show a signal's unique id, not its reason) say what failed
    expect(result.status).toBe(1);
    const args = readFileSync(join(scratch, 'signal-args'), 'utf8').trim().split('\n');
    expect(args).toEqual([
      '--exit-code', '1',
      '--id', expect.stringMatching(/^read_manifest-line-\d+-exit-1:false$/),
      '--stack', '<AWS::StackName>',
      '--resource', instance.logicalId,
      '--region', '<AWS::Region>',
    ]);
  });

  test('configure_jenkins fetches the settings, installs the Jenkins bundle with its scripts executable, and runs configure-jenkins install', () => {
    // GIVEN the settings parameter's value, and a bundle of assets/jenkins whose configure-jenkins records its call
    const jenkinsSettingsId = resourceById(template, 'AWS::SSM::Parameter', 'HostJenkinsSettings').logicalId;
    const settings = renderValue(resourceById(template, 'AWS::SSM::Parameter', 'HostJenkinsSettings').properties.Value);
    const work = mkdtempSync(join(scratch, 'jenkins-'));
    const bundleDir = join(work, 'bundle');
    cpSync(projectPath('assets', 'jenkins'), bundleDir, { recursive: true });
    const record = join(work, 'configure-call');
    writeFileSync(join(bundleDir, 'configure-jenkins'), `#!/bin/bash\nprintf '%s\\n' "$AWS_DEFAULT_REGION" "$@" > ${JSON.stringify(record)}\n`);
    chmodSync(join(bundleDir, 'configure-jenkins'), 0o644);
    chmodSync(join(bundleDir, 'bluegreen-pipeline'), 0o644);
    expect(spawnSync('zip', ['-q', '-r', join(work, 'bundle.zip'), '.'], { cwd: bundleDir }).status).toBe(0);
    writeFileSync(join(work, 'settings.txt'), settings);
    const toolsDir = join(work, 'tools');
    const settingsFile = join(work, 'etc', 'settings');
    const script = userData
      .replace(`readonly JENKINS_TOOLS_DIR='${JENKINS_TOOLS_DIR}'`, `readonly JENKINS_TOOLS_DIR=${toolsDir}`)
      .replace('readonly JENKINS_SETTINGS_FILE=/etc/bluegreen-jenkins/settings', `readonly JENKINS_SETTINGS_FILE=${settingsFile}`);
    const aws = [
      'aws() {',
      `  if [[ "$*" == *"ssm get-parameter"*"--name <${jenkinsSettingsId}>"* ]]; then cat ${JSON.stringify(join(work, 'settings.txt'))};`,
      `  elif [[ "$1 $2" == "s3 cp" ]]; then cp ${JSON.stringify(join(work, 'bundle.zip'))} "\${@: -1}";`,
      '  else return 64; fi',
      '}',
    ].join('\n');

    // WHEN
    const result = withUserData(`${aws}\nconfigure_jenkins`, script);

    // THEN
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(readFileSync(settingsFile, 'utf8').trim()).toBe(settings);
    expect(readFileSync(record, 'utf8').trim().split('\n')).toEqual(['<AWS::Region>', 'install', settingsFile]);
    for (const executable of ['configure-jenkins', 'bluegreen-pipeline']) {
      expect(statSync(join(toolsDir, executable)).mode & 0o777).toBe(0o755);
    }
    expect(statSync(join(toolsDir, 'jenkins.yaml.tmpl')).mode & 0o777).toBe(0o644);
    expect(readFileSync(join(toolsDir, 'sudoers'), 'utf8')).toBe(readFileSync(projectPath('assets', 'jenkins', 'sudoers'), 'utf8'));
  });

  test('installs what Jenkins builds need: git and a JDK 17 for the Gradle wrapper', () => {
    expect(userData).toContain('readonly BUILD_PACKAGES=(git java-17-amazon-corretto-devel)');
    expect(userData).toMatch(/dnf install -y .* "\$JENKINS_PACKAGE" "\$\{BUILD_PACKAGES\[@\]\}"\n/);
  });

  test.each([
    ['200', 0],
    ['404', 0],
    ['502', 1],
    ['000', 1],
  ])('the site check through Nginx treats HTTP %s as exit %i', (status, exitCode) => {
    const result = withUserData(`curl() { printf '${status}'; }; check_site`);
    expect(result.status).toBe(exitCode);
  });
});

describe('the roles of a fleet: its app hosts and its Jenkins, from the script with placeholders filled by hand', () => {
  const SHA_FIRST = 'a'.repeat(64);
  const SHA_RECORDED = 'b'.repeat(64);
  const SHA_NEWER = 'c'.repeat(64);
  const FIRST_RELEASE = [
    'engineUri=s3://assets/engine.zip',
    `artifactUri=s3://assets/${SHA_FIRST}.jar`,
    `sha256=${SHA_FIRST}`,
    'version=1.0.0',
    'healthTimeout=90',
  ].join('\n');

  /** The fleet release parameter's value, as a roll-out records it (FLEET_RELEASE_KEYS). */
  function recorded(sha256: string, version: string, commandId = 'cmd-1'): string {
    const values: Record<keyof typeof FLEET_RELEASE_KEYS, string> = {
      artifactUri: `s3://uploads/cli-releases/${sha256}.jar`,
      sha256,
      version,
      commandId,
      recordedAt: '2026-11-25T10:00:00Z',
      recordedBy: 'jenkins',
      previousArtifactUri: `s3://assets/${SHA_FIRST}.jar`,
      previousSha256: SHA_FIRST,
      previousVersion: '1.0.0',
    };
    return (Object.keys(FLEET_RELEASE_KEYS) as Array<keyof typeof FLEET_RELEASE_KEYS>)
      .map((key) => `${FLEET_RELEASE_KEYS[key]}=${values[key]}`)
      .join('\n');
  }

  /** The source script with every placeholder filled as the stack would for `role`. */
  function scriptFor(role: 'single' | 'fleet' | 'jenkins', engine = '/usr/local/bin/bluegreen'): string {
    const values: Record<string, string> = {
      STACK_NAME: 'Ec2BlueGreen',
      REGION: 'eu-west-1',
      SIGNAL_RESOURCE: role === 'fleet' ? 'FleetGroupAbc123' : 'HostInstanceAbc123',
      FIRST_RELEASE_PARAMETER: role === 'jenkins' ? '' : 'FirstRelease',
      ENGINE_DIR: HOST_PATHS.libDir,
      ENGINE_COMMAND: engine,
      ENGINE_CONFIG: HOST_PATHS.configFile,
      SLOT_UNIT: HOST_PATHS.slotUnit,
      SITE_PORT: '80',
      JENKINS_SETTINGS_PARAMETER: role === 'fleet' ? '' : 'JenkinsSettings',
      JENKINS_TOOLS_DIR,
      HOST_ROLE: role,
      FLEET_RELEASE_PARAMETER: role === 'fleet' ? 'FleetRelease' : '',
      METADATA_GUARD_URI: 's3://assets/imds-guard.sh',
      METADATA_USERS: role === 'jenkins' ? 'jenkins' : '',
    };
    const script = readFileSync(projectPath('assets', 'userdata', 'bootstrap.sh'), 'utf8').replace(/@@([A-Z0-9_]+)@@/g, (_match, name: string) => {
      expect(values, `a value for @@${name}@@`).toHaveProperty(name);
      return values[name]!;
    });
    return script;
  }

  /**
   * A fleet host's deploy against stand-ins: `aws ssm get-parameter` answers from files named
   * by the parameter, and the engine records each deploy; the Nth deploy first puts
   * `changesDuringDeploy[N-1]` (if any) into the fleet release parameter, as a roll-out that
   * records a release while this host deploys would.
   */
  function fleetDeploy(fleetRelease: string, changesDuringDeploy: string[] = []) {
    const dir = mkdtempSync(join(scratch, 'fleet-'));
    const bin = join(dir, 'bin');
    const parameters = join(dir, 'parameters');
    const changes = join(dir, 'changes');
    for (const sub of [bin, parameters, changes]) mkdirSync(sub);
    writeFileSync(join(parameters, 'FirstRelease'), FIRST_RELEASE);
    writeFileSync(join(parameters, 'FleetRelease'), fleetRelease);
    changesDuringDeploy.forEach((value, index) => writeFileSync(join(changes, String(index + 1)), value));
    writeFileSync(
      join(bin, 'aws'),
      [
        '#!/bin/bash',
        '# Stand-in: aws ssm get-parameter --region R --name NAME --query Parameter.Value --output text',
        `[[ "$1 $2 $3 $4 $5 $7 $8 $9 \${10}" == "ssm get-parameter --region eu-west-1 --name --query Parameter.Value --output text" ]] || { echo "aws (stand-in): unexpected: $*" >&2; exit 64; }`,
        `cat ${JSON.stringify(parameters)}/"$6"`,
        '',
      ].join('\n'),
    );
    const deploys = join(dir, 'deploys');
    writeFileSync(
      join(bin, 'bluegreen'),
      [
        '#!/bin/bash',
        `n=$(( $(cat ${JSON.stringify(deploys)} 2>/dev/null | wc -l) + 1 ))`,
        `printf '%s %s\\n' "BLUEGREEN_HEALTH_TIMEOUT=$BLUEGREEN_HEALTH_TIMEOUT" "$*" >> ${JSON.stringify(deploys)}`,
        `if [[ -f ${JSON.stringify(changes)}/$n ]]; then mv ${JSON.stringify(changes)}/$n ${JSON.stringify(parameters)}/FleetRelease; fi`,
        '',
      ].join('\n'),
    );
    chmodSync(join(bin, 'aws'), 0o755);
    chmodSync(join(bin, 'bluegreen'), 0o755);
    const script = scriptFor('fleet', join(bin, 'bluegreen'));
    const result = withUserData(
      `PATH=${JSON.stringify(bin)}:$PATH; read_first_release; deploy_fleet_release; printf 'serving %s\\n' "$ARTIFACT_VERSION"`,
      script,
    );
    const deployed = existsSync(deploys) ? readFileSync(deploys, 'utf8').trim().split('\n') : [];
    return { ...result, deployed };
  }

  const deployOf = (sha256: string, version: string, uri = `s3://uploads/cli-releases/${sha256}.jar`) =>
    `BLUEGREEN_HEALTH_TIMEOUT=90 deploy ${uri} --version ${version} --sha256 ${sha256}`;

  test('a fleet host deploys the release the fleet recorded, with the health timeout of the first release', () => {
    const result = fleetDeploy(recorded(SHA_RECORDED, '2.0.0'));
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.deployed).toEqual([deployOf(SHA_RECORDED, '2.0.0')]);
    expect(result.stdout).toContain('serving 2.0.0\n');
  });

  test('a fleet host deploys the stack first release while the parameter holds FLEET_RELEASE_UNSET', () => {
    const result = fleetDeploy(FLEET_RELEASE_UNSET);
    expect(result.status, result.stderr).toBe(0);
    expect(result.deployed).toEqual([deployOf(SHA_FIRST, '1.0.0', `s3://assets/${SHA_FIRST}.jar`)]);
    expect(result.stdout).toContain("FleetRelease records no release yet: deploying the stack's first release");
  });

  test('a record without an artifact and its checksum names no release: the first release it is', () => {
    const result = fleetDeploy(`# written by hand\nversion=9.9.9\nsha256=${SHA_RECORDED}\n`);
    expect(result.status, result.stderr).toBe(0);
    expect(result.deployed).toEqual([deployOf(SHA_FIRST, '1.0.0', `s3://assets/${SHA_FIRST}.jar`)]);
  });

  test('a release recorded without a version is labelled as the engine labels it: sha256- and the first 12 digits of its sha256', () => {
    const record = recorded(SHA_RECORDED, '2.0.0').replace('version=2.0.0', 'version=');
    const result = fleetDeploy(record);
    expect(result.status, result.stderr).toBe(0);
    expect(result.deployed).toEqual([deployOf(SHA_RECORDED, defaultReleaseLabel(SHA_RECORDED))]);
  });

  test('a roll-out that records a new release while the host deploys: the host deploys that one too, and serves it', () => {
    const result = fleetDeploy(recorded(SHA_RECORDED, '2.0.0'), [recorded(SHA_NEWER, '3.0.0', 'cmd-2')]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.deployed).toEqual([deployOf(SHA_RECORDED, '2.0.0'), deployOf(SHA_NEWER, '3.0.0')]);
    expect(result.stdout).toContain(`a roll-out recorded s3://uploads/cli-releases/${SHA_NEWER}.jar while this host deployed 2.0.0: deploying it too`);
    expect(result.stdout).toContain('serving 3.0.0\n');
  });

  test('the same during the first release: the host moves on to what the roll-out recorded', () => {
    const result = fleetDeploy(FLEET_RELEASE_UNSET, [recorded(SHA_NEWER, '3.0.0', 'cmd-2')]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.deployed).toEqual([deployOf(SHA_FIRST, '1.0.0', `s3://assets/${SHA_FIRST}.jar`), deployOf(SHA_NEWER, '3.0.0')]);
  });

  test('follows a changing release a bounded number of times, then keeps what it has', () => {
    // GIVEN a release recorded anew during each of the host's deploys
    const changes = [3, 4, 5, 6, 7].map((major) => recorded(String(major).repeat(64), `${major}.0.0`, `cmd-${major}`));
    const result = fleetDeploy(recorded(SHA_RECORDED, '2.0.0'), changes);
    expect(result.status, result.stderr).toBe(0);
    expect(result.deployed).toHaveLength(4);
    expect(result.stdout).toContain('warning: the fleet release changed 4 times during this boot; keeping 5.0.0');
  });

  /** Runs main with every step replaced by one that prints its name. */
  function stepsOfMain(role: string) {
    const steps = [
      'install_cfn_bootstrap', 'install_packages', 'ensure_swap', 'select_java', 'read_first_release', 'install_engine',
      'behind_load_balancer', 'install_tls_certificate', 'start_nginx', 'guard_metadata', 'deploy_release', 'deploy_fleet_release', 'configure_jenkins',
      'start_jenkins', 'verify_jenkins', 'check_site',
    ];
    const stubs = steps.map((step) => `${step}() { echo ${step}; }`).join('; ');
    const result = withUserData(
      `${stubs}; signal_cloudformation() { echo "signal $1"; }; signal_failure() { echo 'signal 1'; }; ARTIFACT_VERSION=2.0.0; main`,
      scriptFor('single')
        .replace("readonly HOST_ROLE='single'", `readonly HOST_ROLE='${role}'`)
        // on_error signals only where cfn-signal is installed.
        .replace('readonly CFN_SIGNAL=/opt/aws/bin/cfn-signal', 'readonly CFN_SIGNAL=/bin/true'),
    );
    return { ...result, steps: result.stdout.split('\n').filter((line) => /^[a-z_]+$|^signal /.test(line)) };
  }

  test('a fleet host turns Nginx keep-alive off behind the load balancer, once, leaving an operator\'s own value', () => {
    const dir = mkdtempSync(join(scratch, 'engine-config-'));
    const config = join(dir, 'bluegreen.conf');
    writeFileSync(config, 'BLUEGREEN_RUNNER=systemd\n');
    const script = scriptFor('fleet').replace(/readonly ENGINE_CONFIG='[^']*'/, `readonly ENGINE_CONFIG='${config}'`);
    expect(withUserData('behind_load_balancer; behind_load_balancer', script).status).toBe(0);
    expect(readFileSync(config, 'utf8')).toBe('BLUEGREEN_RUNNER=systemd\nBLUEGREEN_NGINX_KEEPALIVE_TIMEOUT=0\n');
    writeFileSync(config, 'BLUEGREEN_NGINX_KEEPALIVE_TIMEOUT=5s\n');
    expect(withUserData('behind_load_balancer', script).status).toBe(0);
    expect(readFileSync(config, 'utf8')).toBe('BLUEGREEN_NGINX_KEEPALIVE_TIMEOUT=5s\n');
  });

  test.each([
    ['single', ['install_cfn_bootstrap', 'install_packages', 'ensure_swap', 'select_java', 'read_first_release', 'install_engine', 'install_tls_certificate', 'start_nginx', 'guard_metadata', 'deploy_release', 'configure_jenkins', 'start_jenkins', 'verify_jenkins', 'check_site', 'signal 0']],
    ['fleet', ['install_cfn_bootstrap', 'install_packages', 'ensure_swap', 'select_java', 'read_first_release', 'install_engine', 'behind_load_balancer', 'install_tls_certificate', 'start_nginx', 'guard_metadata', 'deploy_fleet_release', 'check_site', 'signal 0']],
    ['jenkins', ['install_cfn_bootstrap', 'install_packages', 'ensure_swap', 'select_java', 'guard_metadata', 'configure_jenkins', 'start_jenkins', 'verify_jenkins', 'signal 0']],
  ])('HOST_ROLE=%s boots with these steps, in this order', (role, expected) => {
    const result = stepsOfMain(role);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.steps).toEqual(expected);
  });

  test('an unknown HOST_ROLE fails the boot and tells CloudFormation', () => {
    const result = stepsOfMain('bogus');
    expect(result.status).toBe(1);
    expect(result.steps).toEqual(['install_cfn_bootstrap', 'signal 1']);
    expect(result.stdout).toContain("error: HOST_ROLE is 'bogus', not single, fleet or jenkins");
  });

  /** What install_packages asks of curl, rpm and dnf (stand-ins that record their arguments). */
  function packagesFor(role: 'single' | 'fleet' | 'jenkins'): string[] {
    const result = withUserData(
      `curl() { echo "curl $*"; }; rpm() { echo "rpm $*"; }; dnf() { echo "dnf $*"; }; install_packages`,
      scriptFor(role),
    );
    expect(result.status, result.stderr).toBe(0);
    return result.stdout.trim().split('\n');
  }

  test('packages: a fleet host gets Nginx, logrotate and the app’s Java, no Jenkins and no Jenkins repository', () => {
    expect(packagesFor('fleet')).toEqual(['dnf install -y nginx unzip logrotate java-17-amazon-corretto-headless']);
  });

  test('packages: the fleet’s Jenkins gets Jenkins on Java 21, the build packages and Node.js 22 for the operator command, no Nginx', () => {
    const calls = packagesFor('jenkins');
    expect(calls[0]).toMatch(/^curl .*--output \/etc\/yum\.repos\.d\/jenkins\.repo https:\/\/pkg\.jenkins\.io\/rpm-stable\/jenkins\.repo$/);
    expect(calls[1]).toMatch(
      /^dnf install -y unzip fontconfig nodejs22 java-17-amazon-corretto-headless java-21-amazon-corretto-headless jenkins-\d+\.\d+\.\d+ git java-17-amazon-corretto-devel$/,
    );
    expect(calls).toHaveLength(2);
  });

  test('packages: the single host installs what it always did and logrotate, with Jenkins pinned and no separate key import', () => {
    const calls = packagesFor('single');
    expect(calls.at(-1)).toMatch(
      /^dnf install -y nginx unzip logrotate fontconfig java-17-amazon-corretto-headless java-21-amazon-corretto-headless jenkins-\d+\.\d+\.\d+ git java-17-amazon-corretto-devel$/,
    );
    expect(calls.filter((call) => call.startsWith('rpm '))).toEqual([]);
  });

  test('a fleet host makes Java 17 the default and looks for no Jenkins Java, which it does not have', () => {
    const result = withUserData(
      [
        `rpm() { [[ "$*" == "-ql java-17-amazon-corretto-headless" ]] && echo /usr/lib/jvm/java-17/bin/java; }`,
        'alternatives() { echo "alternatives $*"; }',
        'mkdir() { echo "mkdir $*"; }',
        'select_java',
      ].join('; '),
      scriptFor('fleet'),
    );
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe('alternatives --set java /usr/lib/jvm/java-17/bin/java');
  });
});

describe('a first boot that fails before cfn-signal is installed still fails the stack at once, saying why', () => {
  const source = readFileSync(projectPath('assets', 'userdata', 'bootstrap.sh'), 'utf8').split('\n');
  const lineOf = (text: string) => source.findIndex((line) => line.includes(text)) + 1;

  /**
   * Runs the whole boot (main) against stand-ins on PATH that record their calls: dnf (failing
   * its first `dnfFailures` calls), aws, and sleep (which returns at once). cfn-signal is at
   * `cfnSignal`, or missing.
   */
  function bootWith(options: { dnfFailures: number; cfnSignal?: 'records' | 'fails' }) {
    const dir = mkdtempSync(join(scratch, 'early-'));
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    const calls = join(dir, 'calls');
    const standIn = (name: string, body: string) =>
      writeFileSync(join(bin, name), `#!/bin/bash\nprintf '%s\\n' "${name} $*" >> ${JSON.stringify(calls)}\n${body}\n`, { mode: 0o755 });
    standIn('dnf', `n=$(grep -c '^dnf ' ${JSON.stringify(calls)}); ((n > ${options.dnfFailures})) || { echo 'Curl error (28): Timeout was reached' >&2; exit 1; }`);
    standIn('aws', 'exit 0');
    standIn('sleep', 'exit 0');
    const cfnSignal = join(dir, 'cfn-signal');
    if (options.cfnSignal !== undefined) {
      writeFileSync(cfnSignal, `#!/bin/bash\nprintf '%s\\n' "cfn-signal $*" >> ${JSON.stringify(calls)}\n${options.cfnSignal === 'fails' ? 'exit 1' : 'exit 0'}\n`, { mode: 0o755 });
    }
    // After cfn-signal's install, every step of the boot is replaced by one that stops it there.
    const script = userData.replace('readonly CFN_SIGNAL=/opt/aws/bin/cfn-signal', `readonly CFN_SIGNAL=${cfnSignal}`);
    const result = withUserData(`PATH=${JSON.stringify(bin)}:$PATH; install_packages() { echo 'reached install_packages'; exit 0; }; main`, script);
    const recorded = existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : [];
    return { ...result, calls: recorded };
  }

  const installLine = () => lineOf('retry dnf install -y aws-cfn-bootstrap');

  test('installing the signal helper is tried 5 times, waiting longer each time, then the boot signals FAILURE through the AWS CLI', () => {
    const result = bootWith({ dnfFailures: 99 });
    expect(result.status).toBe(1);
    expect(result.calls.filter((call) => call.startsWith('dnf '))).toEqual(Array(5).fill('dnf install -y aws-cfn-bootstrap'));
    expect(result.calls.filter((call) => call.startsWith('sleep '))).toEqual(['sleep 15', 'sleep 30', 'sleep 45', 'sleep 60']);
    // A unique id has at most 64 characters: the step, line and status first, then the command.
    const id = `install_cfn_bootstrap-line-${installLine()}-exit-1:dnf-install--y-aws-cfn-bootstrap`.slice(0, 64);
    expect(result.calls.filter((call) => call.startsWith('aws '))).toEqual([
      `aws cloudformation signal-resource --region <AWS::Region> --stack-name <AWS::StackName> --logical-resource-id ${instance.logicalId} --unique-id ${id} --status FAILURE`,
    ]);
    expect(result.stdout).toContain(`error: exit 1 at line ${installLine()}: dnf install -y aws-cfn-bootstrap`);
    expect(result.stdout).not.toContain('reached install_packages');
  });

  test('a mirror that answers on the third try: the boot goes on, and nothing is signalled', () => {
    const result = bootWith({ dnfFailures: 2 });
    expect(result.status, result.stderr).toBe(0);
    expect(result.calls.filter((call) => call.startsWith('dnf '))).toHaveLength(3);
    expect(result.stderr).toContain("warning: try 2 of 'dnf install -y aws-cfn-bootstrap' failed");
    expect(result.stdout).toContain('reached install_packages');
    expect(result.calls.filter((call) => /^(aws|cfn-signal) /.test(call))).toEqual([]);
  });

  test('with cfn-signal installed, a later failure goes through it, the unique id saying what failed; the AWS CLI is not needed', () => {
    const dir = mkdtempSync(join(scratch, 'late-'));
    const calls = join(dir, 'calls');
    const cfnSignal = join(dir, 'cfn-signal');
    writeFileSync(cfnSignal, `#!/bin/bash\nprintf '%s\\n' "cfn-signal $*" >> ${JSON.stringify(calls)}\n`, { mode: 0o755 });
    writeFileSync(join(dir, 'aws'), `#!/bin/bash\nprintf '%s\\n' "aws $*" >> ${JSON.stringify(calls)}\nexit 255\n`, { mode: 0o755 });
    const script = userData.replace('readonly CFN_SIGNAL=/opt/aws/bin/cfn-signal', `readonly CFN_SIGNAL=${cfnSignal}`);
    // read_first_release's `aws ssm get-parameter` fails every time (retried, without waiting).
    const result = withUserData(
      `PATH=${JSON.stringify(dir)}:$PATH; sleep() { :; }; install_cfn_bootstrap() { :; }; install_packages() { :; }; ensure_swap() { :; }; select_java() { :; }; main`,
      script,
    );
    expect(result.status).toBe(255);
    const recorded = readFileSync(calls, 'utf8').trim().split('\n');
    expect(recorded.filter((call) => call.startsWith('aws '))).toHaveLength(5);
    // Bash reports the assignment, continued over two lines, at its last line; once, not again for the $(...).
    const line = lineOf('manifest=$(retry aws ssm get-parameter') + 1;
    expect(recorded.filter((call) => call.startsWith('cfn-signal '))).toEqual([
      `cfn-signal --exit-code 1 --id read_first_release-line-${line}-exit-255:manifest---retry-aws-ssm-ge --stack <AWS::StackName> --resource ${instance.logicalId} --region <AWS::Region>`,
    ]);
  });

  test('cfn-signal installed but failing: the AWS CLI signals instead', () => {
    const result = bootWith({ dnfFailures: 99, cfnSignal: 'fails' });
    expect(result.status).toBe(1);
    const signals = result.calls.filter((call) => /^(aws|cfn-signal) /.test(call));
    expect(signals).toHaveLength(2);
    const id = `install_cfn_bootstrap-line-${installLine()}-exit-1:dnf-install--y-aws-cfn-bootstrap`.slice(0, 64);
    expect(signals[0]).toMatch(new RegExp(`^cfn-signal --exit-code 1 --id ${id} `));
    expect(signals[1]).toMatch(new RegExp(`^aws cloudformation signal-resource .* --unique-id ${id} --status FAILURE$`));
  });

  test('the user data the instance gets is the code without its comments, line for line, so an error line points into the source', () => {
    const lines = userData.split('\n');
    expect(lines).toHaveLength(source.length);
    expect(lines.filter((line) => /^\s*#/.test(line) && !/^\s*# shellcheck /.test(line))).toEqual(['#!/bin/bash']);
    expect(lines[installLine() - 1]).toBe(source[installLine() - 1]);
    expect(source.filter((line) => /^\s*#/.test(line)).length).toBeGreaterThan(40);
  });
});
