/** `ec2-bluegreen --help`. */
import { EXIT_CODE_TABLE } from '../lib/contract.js';
import { HISTORY_MAX_ENTRIES } from './args.js';
import { FLEET_VARIABLES, STACK_OUTPUTS } from './stack.js';

/** The host's failure codes, one per line, from the one table (lib/contract.ts). */
const HOST_EXIT_CODES = Object.values(EXIT_CODE_TABLE)
  .filter((entry) => entry.code !== 0)
  .map((entry) => `  ${entry.code} ${entry.meaning}`)
  .join('\n');

export const HELP = `Usage: npx ec2-bluegreen COMMAND --stack NAME [--region REGION] [options]

Runs the stack's SSM deploy document on its instance and prints the host's progress as it
happens, until the command ends. The stack's outputs name the instance (${STACK_OUTPUTS.instanceId}),
the document (${STACK_OUTPUTS.documentName}), where the output streams (${STACK_OUTPUTS.outputLogGroup})
and where jars are uploaded (${STACK_OUTPUTS.artifactUploadLocation}).

On a fleet stack (output ${STACK_OUTPUTS.fleetTarget} instead of ${STACK_OUTPUTS.instanceId}) every command runs on every host
carrying the fleet's tag: one SendCommand by tag, ${STACK_OUTPUTS.fleetMaxConcurrency} hosts at a time, stopping at
the first failing host (the hosts after it keep their release). Each host's start and end is a
line of its own ('i-0abc: started (host 1 of 3)', 'i-0abc: Success in 2.1s (1 of 3 done)'), and
its output lines are prefixed with its id ('i-0abc | ...'). A deploy or rollback that succeeded
on every host is recorded in ${STACK_OUTPUTS.fleetReleaseParameter}, which hosts the Auto Scaling group adds
boot; hosts that joined while it ran then get the recorded release too. A failed one records
nothing and says what to run to put the recorded release back.

Commands:
  deploy JAR|s3://BUCKET/KEY [--version V] [--sha256 HEX] [--health-timeout SECONDS]
         [--max-concurrency N|P%]
      A local JAR is checked (a jar, with a zip header), hashed, and uploaded to the stack's
      artifact location (once per content). For s3://, the object is read to compute its
      sha256 unless --sha256 is given. The host refuses a jar whose sha256 differs.
      --version defaults to sha256-<first 12 hex digits>, as for 'cdk deploy -c artifact=...'.
      --max-concurrency (fleet only) overrides the stack's ${STACK_OUTPUTS.fleetMaxConcurrency} for this roll-out.
  rollback [--health-timeout SECONDS] [--max-concurrency N|P%]
      Makes the warm standby live again (health-gated). On a fleet, on every host; it is
      recorded when every host then serves the release recorded before the current one.
  status [--json]
      The live slot and both slots' version, health and release. On a fleet, one row per host
      (live slot and version, warm standby, whether it runs the recorded release), the recorded
      release, and whether the hosts agree.
  history [--json] [--limit N]
      The host's last deploys, switches and rollbacks (up to ${HISTORY_MAX_ENTRIES}). On a fleet, each
      host's own history under its id (--limit applies per host).

Credentials and region come from the usual AWS places (AWS_PROFILE, AWS_REGION, ...).
Ctrl-C stops following; the command itself goes on on the host.

For pipelines (the fleet's Jenkins runs 'deploy' this way, bundled into one file):
  --fleet-from-env      instead of --stack: read a fleet stack's outputs from the variables
                        the fleet's Jenkins has as global variables, and the region from
                        ${FLEET_VARIABLES.region}:
                          ${Object.values(FLEET_VARIABLES).filter((name) => name !== FLEET_VARIABLES.region).join('\n                          ')}
                        No CloudFormation call; a missing or wrong variable is a usage
                        error (exit 2).
  --requested-by TEXT   deploy, rollback: who asked, in the Run Command comment (default
                        user@host), e.g. 'Jenkins shop #42'.
  --recorded-by cli|jenkins
                        deploy, rollback on a fleet: recordedBy in the release record
                        (default cli).

Exit codes: 0 done (also a no-op); the host's code when it failed there:
${HOST_EXIT_CODES}
and 2 for a bad command
line, 3 for a local jar that is not one, 10 when SSM ended the command without a result
(timed out, cancelled, undeliverable), 9 when nothing was sent (no such stack, not an
ec2-bluegreen stack, instance not Online, upload or AWS permission failed). On a fleet, a
failed roll-out exits with the first failed host's code (10 when no host failed but the
roll-out did not finish), and 9 also when the stack's fleet outputs or its release record
cannot be read (nothing sent) or recording the release failed (run the same command again).
130 after Ctrl-C, 143 after SIGTERM (a CI system aborting the build) while following a fleet.

A deploy here is outside CloudFormation. The stack's deploy resource still holds the jar of
the last 'cdk deploy', and CloudFormation runs it only when its properties change:
  - 'cdk deploy' with the same jar (and the same artifactVersion and healthTimeout) changes
    nothing: the jar deployed here stays live.
  - 'cdk deploy' with a different jar, or a changed artifactVersion or healthTimeout, deploys
    the stack's jar, replacing the one deployed here (a fast switch back when it is still the
    warm standby).
  - A replaced instance boots with the stack's jar.
To make a jar the stack's own, deploy it with 'npx cdk deploy -c artifact=PATH.jar'.
`;
