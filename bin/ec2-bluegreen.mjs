#!/usr/bin/env node
// `npx ec2-bluegreen`: the operator command (cli/main.ts). The sources are TypeScript, run
// through tsx's loader (a dev dependency, installed by `npm ci`), so there is no build step.
import { register } from 'tsx/esm/api';

// The SDK is pinned in the lock file. On Node 20 it warns that its releases after the first week
// of January 2027 need Node 22 or later: a notice for maintainers, not for each operator run.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
// `ec2-bluegreen history | head`: a closed pipe ends the output, not with a stack trace.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});
const { runCli } = await import('../cli/main.ts');
process.exitCode = await runCli(process.argv.slice(2));
