#!/usr/bin/env node
// `npx ec2-bluegreen`: the operator command (cli/main.ts). The sources are TypeScript, run
// through tsx's loader (a dev dependency, installed by `npm ci`), so there is no build step.
// The fleet's Jenkins runs the same command bundled into one file (lib/jenkins-tools.ts).
import { register } from 'tsx/esm/api';

register();
const { runProcess } = await import('../cli/process.ts');
await runProcess(process.argv.slice(2));
