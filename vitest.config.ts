import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Three projects, told apart by file name and folder alone:
 *
 * - `unit`: every `test/**\/*.test.ts` that is not `*.e2e.test.ts`. It starts no child process
 *   (its setup file makes node:child_process throw). `npm run test:unit`.
 * - `e2e`: `test/**\/*.e2e.test.ts` outside test/systemd, the tests that start real Nginx, JVMs,
 *   the bash engine, load or any other program.
 * - `systemd`: the e2e files of test/systemd, which boot a container with a real systemd. Their
 *   project's global setup starts building the container's root file system (debootstrap, a
 *   minute or more on a clean checkout) when the run begins, at the lowest CPU priority, so that
 *   it overlaps the other files instead of adding to the run; they run last, when it is done.
 *
 * `npm test` runs all three in one vitest run with one summary, in that order;
 * `npm run test:e2e` the last two.
 */
const E2E_FILES = 'test/**/*.e2e.test.ts';
const SYSTEMD_FILES = 'test/systemd/**/*.e2e.test.ts';

/**
 * The AWS SDK (pinned in package.json) warns once per process, on Node.js below 22, that its
 * releases after the first week of January 2027 will need 22. The test run loads it in every e2e
 * file's process and every unit worker, so the one notice became a dozen that teach nothing; the
 * README ("Node.js") says which Node.js the project supports and when 20 goes. This is the SDK's
 * own switch for that warning (@aws-sdk/core emitWarningIfUnsupportedVersion), the one the
 * operator command sets too (cli/process.ts).
 */
const SDK_NODE_WARNING_OFF = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };

export default defineConfig({
  test: {
    reporters: ['default'],
    env: SDK_NODE_WARNING_OFF,
    // The e2e suites start real Nginx and JVMs on fixed loopback ports per suite; two cores
    // cannot run several of them at once without starving the health checks. Vitest 3 takes
    // this for the whole run, not per project, so `npm test` runs every file one at a time;
    // `npm run test:unit` turns it back on (--file-parallelism) for the unit project alone.
    fileParallelism: false,
    // The unit project runs in worker threads that each serve many files, so aws-cdk-lib and the
    // CloudFormation schemas its first synth loads (several seconds) load once per worker, not
    // once per file: the unit project takes a third of the time. Its files share modules, so a
    // unit test must not rely on state another file left. The e2e project keeps the default of
    // one fresh process per file.
    poolOptions: { threads: { isolate: false } },
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          pool: 'threads', // shared workers: see poolOptions above
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, E2E_FILES],
          setupFiles: ['test/support/no-child-processes.ts'],
          env: {
            ...SDK_NODE_WARNING_OFF,
            // No esbuild bundling of the deploy handlers at synth (it starts esbuild): the
            // templates are the same but for the code asset, whose bundle the e2e project checks
            // (test/constructs/deployment-bundle.e2e.test.ts).
            CDK_CONTEXT_JSON: JSON.stringify({ 'aws:cdk:bundling-stacks': [] }),
          },
          // A synth takes a second or two alone, longer while other files synthesize too.
          testTimeout: 60_000,
          hookTimeout: 60_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: [E2E_FILES],
          exclude: [...configDefaults.exclude, SYSTEMD_FILES],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // After the unit project: no synth competes with the health checks for the CPU.
          sequence: { groupOrder: 1 },
        },
      },
      {
        extends: true,
        test: {
          name: 'systemd',
          include: [SYSTEMD_FILES],
          globalSetup: ['test/systemd/rootfs-early.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
