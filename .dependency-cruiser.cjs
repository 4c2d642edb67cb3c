/**
 * Which way imports may run (dependency-cruiser; `npm run lint:deps`, and in `npm test` through
 * test/dependencies.test.ts). Inward only:
 *
 *   lib/            the CDK app and the pure deploy logic (lib/deploy/), shared by everyone
 *   lambda/, cli/   the custom resource's functions and the operator command: they use lib/,
 *                   never each other
 *   scripts/, bench/, test/   harnesses that use all of the above
 *
 * Type-only imports count too: a type taken from a harness ties the shipped code to it as much as
 * a value does.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'lib-imports-inward-only',
      comment:
        'lib/ is what the construct, the Lambda and the operator command share: it must not reach out to any of them, ' +
        'nor to the harnesses. Move the shared piece into lib/ (lib/deploy/ for deploy logic) and import it from there.',
      severity: 'error',
      from: { path: '^lib/' },
      to: { path: '^(lambda|cli|scripts|bench)/' },
    },
    {
      name: 'shipped-code-not-from-harnesses',
      comment:
        'The Lambda and the operator command ship; scripts/ and bench/ are the local test host, the demo and the ' +
        'benchmark. Put what both need in lib/ (names and types that cross the host boundary go in lib/contract.ts).',
      severity: 'error',
      from: { path: '^(cli|lambda)/' },
      to: { path: '^(scripts|bench)/' },
    },
    {
      name: 'cli-and-lambda-are-siblings',
      comment:
        'The operator command and the custom resource do the same deploy from two sides; what they share lives in ' +
        'lib/deploy/, so that neither ships the other. Move the shared piece there.',
      severity: 'error',
      from: { path: '^cli/' },
      to: { path: '^lambda/' },
    },
    {
      name: 'lambda-and-cli-are-siblings',
      comment: 'The deploy functions are bundled on their own; what they share with the operator command lives in lib/deploy/.',
      severity: 'error',
      from: { path: '^lambda/' },
      to: { path: '^cli/' },
    },
    {
      name: 'shipped-code-not-from-tests',
      comment: 'Nothing under lib/, cli/ or lambda/ may import from test/: tests use the code, never the other way round.',
      severity: 'error',
      from: { path: '^(lib|cli|lambda)/' },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|cdk\\.out|\\.build|coverage)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
};
