/** The fleet's failure message reads as sentences: one full stop after each, never two. */
import { expect, test } from 'vitest';
import { fleetFailureMessage } from '../../lib/deploy/fleet.js';

const COMMAND_ID = '3b0f7e9c-0000-4000-8000-000000000001';
/** Two full stops in a row that are not an ellipsis. */
const DOUBLE_STOP = /(?<!\.)\.\.(?!\.)/;

test.each([
  ['a host whose last error line ends with a full stop', 'bluegreen: error: v3 never became healthy on green. Nginx was not touched: blue (v2) keeps serving.', '1 of 2 hosts failed'],
  ['a host whose error line ends without one', 'bluegreen: error: v3 never became healthy on green; blue (v2) keeps serving', '1 of 2 hosts failed'],
  ['a summary that ends with a full stop', 'bluegreen: error: no standby.', 'the catch-up deploy failed: 1 of 1 hosts failed.'],
])('%s: no double full stop', (_case, stderr, summary) => {
  const message = fleetFailureMessage({
    summary,
    commandId: COMMAND_ID,
    version: 'v3',
    failedHosts: [{ instanceId: 'i-0aaaaaaaaaaaaaaa1', report: { Status: 'Failed', StatusDetails: 'Failed', ResponseCode: 5, StandardErrorContent: stderr } }],
    succeeded: ['i-0aaaaaaaaaaaaaaa2'],
    untouched: [],
    context: { deliveryTimeoutSeconds: 300 },
    outputLogGroupName: '/bluegreen/deploy',
  });
  expect(message).not.toMatch(DOUBLE_STOP);
  expect(message).toMatch(/^Roll-out of v3 failed: .*hosts failed\. i-0aaaaaaaaaaaaaaa1: the deploy script failed with exit status 5 .*; host: bluegreen: error: /);
  expect(message).toMatch(/(keeps serving|no standby)\. Took the new release: i-0aaaaaaaaaaaaaaa2 /);
});
