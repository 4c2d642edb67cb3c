/** `ec2-bluegreen --help`. */
import { HISTORY_MAX_ENTRIES } from './args.js';
import { STACK_OUTPUTS } from './stack.js';

export const HELP = `Usage: npx ec2-bluegreen COMMAND --stack NAME [--region REGION] [options]

Runs the stack's SSM deploy document on its instance and prints the host's progress as it
happens, until the command ends. The stack's outputs name the instance (${STACK_OUTPUTS.instanceId}),
the document (${STACK_OUTPUTS.documentName}), where the output streams (${STACK_OUTPUTS.outputLogGroup})
and where jars are uploaded (${STACK_OUTPUTS.artifactUploadLocation}).

Commands:
  deploy JAR|s3://BUCKET/KEY [--version V] [--sha256 HEX] [--health-timeout SECONDS]
      A local JAR is checked (a jar, with a zip header), hashed, and uploaded to the stack's
      artifact location (once per content). For s3://, the object is read to compute its
      sha256 unless --sha256 is given. The host refuses a jar whose sha256 differs.
      --version defaults to sha256-<first 12 hex digits>, as for 'cdk deploy -c artifact=...'.
  rollback [--health-timeout SECONDS]
      Makes the warm standby live again (health-gated).
  status [--json]
      The live slot and both slots' version, health and release.
  history [--json] [--limit N]
      The host's last deploys, switches and rollbacks (up to ${HISTORY_MAX_ENTRIES}).

Credentials and region come from the usual AWS places (AWS_PROFILE, AWS_REGION, ...).
Ctrl-C stops following; the command itself goes on on the host.

Exit codes: 0 done (also a no-op); the host's code when it failed there: 1 unexpected,
2 bad parameter, 3 bad artifact, 4 another deploy holds the lock, 5 the new release did not
become healthy, 6 Nginx rejected the switch, 7 nothing to switch to; and 2 for a bad command
line, 3 for a local jar that is not one, 8 when SSM ended the command without a result
(timed out, cancelled, undeliverable), 9 when nothing was sent (no such stack, not an
ec2-bluegreen stack, instance not Online, upload or AWS permission failed).

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
