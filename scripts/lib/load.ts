/**
 * Load generator for the blue/green tests, the benchmark and the demo.
 *
 * It keeps a mix of HTTP/1.1 traffic running against one base URL and records every completed
 * request, so that a test can PROVE that no request failed while a deploy swapped the slots:
 *
 * - `keepAliveConnections` workers share one keep-alive `http.Agent` (`maxSockets` = that
 *   number), like browsers and API clients that hold connections open across a reload;
 * - `newConnectionWorkers` workers open a new connection per request (`Connection: close`);
 * - every `postEvery`th request of a worker is `POST /echo` with a random 1–16 KiB body whose
 *   byte count and SHA-256 the answer must repeat; every `slowRequestEvery`th is
 *   `GET /slow?ms=slowMs`, which is still in flight while a switch happens; the rest are `GET /`.
 *
 * A request is OK only if its status is 2xx, its body is complete and parses as JSON with a
 * `version` string, and (for `/echo`) the byte count and SHA-256 match what was sent.
 *
 * Resets on reused keep-alive sockets: when Nginx reloads, its old workers close their idle
 * keep-alive client connections, and a request written on one at that instant is reset before
 * any response byte arrives. RFC 9112 §9.3.1 lets a client resend such a request, and browsers
 * do. This module counts each of those as a `rawReset` and (with `resend`, the default) sends the
 * request once more on a new connection; the outcome of that resend is the request's outcome.
 * It never resends after a response byte arrived, on a fresh socket, or twice.
 *
 * Times in samples and marks are milliseconds since the run started (`performance.now()`-based);
 * `LoadReport.startEpochMs` anchors them to the wall clock. The report is plain, JSON-serialisable
 * data; the pure helpers of load/analysis.ts analyse it.
 *
 * This module is the generator's one entry point; its parts live in scripts/lib/load/:
 * - types.ts: the options, samples, counters and report (plain data);
 * - options.ts: defaults and checks of the options, and the target host, port and paths;
 * - request-mix.ts: which request a worker sends next (GET /, POST /echo, GET /slow);
 * - attempt.ts: one request on the wire and what its answer proves, resets told apart;
 * - tally.ts: the counts, failures, versions and samples recorded so far;
 * - generator.ts: `startLoad`: the workers, the resend, stop and the report;
 * - analysis.ts: pure helpers over a report (percentiles, windows, versions, rates, summary).
 *
 * @example
 * const run = startLoad({ baseUrl: 'http://127.0.0.1:18080' });
 * await deploy('v2');
 * const switched = run.mark('switch to v2 done');
 * await sleep(2000);
 * const report = await run.stop();
 * expect(report.totals.failed).toBe(0);
 * expect(versionsStartedAfter(report, switched)).toEqual(['v2']);
 */
export * from './load/analysis.js';
export { startLoad } from './load/generator.js';
export * from './load/types.js';
