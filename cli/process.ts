/**
 * `ec2-bluegreen` as a process: what bin/ec2-bluegreen.mjs (through tsx) and the bundled
 * command on the fleet's Jenkins (lib/jenkins-tools.ts) both run, so they behave alike.
 */
import { runCli } from './main.js';

/** Runs the command line `argv` (without node and the script); sets the process's exit code. */
export async function runProcess(argv: readonly string[]): Promise<void> {
  // The SDK is pinned in the lock file: its notice about future releases needing a newer Node.js
  // is for the project's maintainers, not for each operator run.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // `ec2-bluegreen history | head`: a closed pipe ends the output, not with a stack trace.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  process.exitCode = await runCli(argv);
}
