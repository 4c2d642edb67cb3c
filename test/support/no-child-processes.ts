/**
 * Setup file of the unit project (vitest.config.ts): a unit test starts no child process, so
 * every way node:child_process offers to start one throws instead, naming what was started.
 * A test that needs Nginx, a JVM, bash, esbuild or any other program is an end-to-end test: its
 * file is named `*.e2e.test.ts`, which puts it in the e2e project.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';

const STARTERS = ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'] as const;
const GUARDED = Symbol.for('ec2-bluegreen.unit-tests-start-no-child-process');

const childProcess = createRequire(import.meta.url)('node:child_process') as Record<string | symbol, unknown>;

// Setup files run before each test file, in workers that outlive one file: guard once per worker.
if (childProcess[GUARDED] !== true) {
  for (const name of STARTERS) {
    childProcess[name] = (command: unknown, args?: unknown): never => {
      const commandLine = [command, ...(Array.isArray(args) ? args : [])].map(String).join(' ');
      throw new Error(
        `a unit test tried to start a child process (child_process.${name}: ${commandLine.slice(0, 200)}). ` +
          'Unit tests start no process; nothing was started. If the test needs a real program, name its file ' +
          '*.e2e.test.ts so that it runs in the e2e project (npm run test:e2e).',
      );
    };
  }
  childProcess[GUARDED] = true;
  // ES module imports of node:child_process see the CommonJS exports only after this.
  syncBuiltinESMExports();
}
