/**
 * How the bench judges the README's promises: a full run calls each met or NOT MET; a quick run
 * prints the same figures but judges none of them, except that a failure is NOT MET on any run.
 */
import { describe, expect, test } from 'vitest';
import { notMeasured } from '../bench/lib/figures.js';
import type { ProxyFigures } from '../bench/lib/proxy.js';
import { judgeGoals, type FlowResult, type OurResult } from '../bench/lib/report.js';

function ours(options: { failed?: number; deploys?: number; overhead?: number; switchP99?: number } = {}): OurResult {
  const deploys = options.deploys ?? 20;
  const overhead = options.overhead ?? 0.35;
  return {
    setup: null,
    deploys: [],
    swaps: {
      deploys,
      succeeded: deploys,
      requests: 1000,
      failed: options.failed ?? 0,
      failedNewConnection: 0,
      failedKeepAlive: options.failed ?? 0,
      rawResets: 3,
      resetsPerSwap: { median: 0, max: 2, each: Array.from({ length: deploys }, () => 0) },
      latency: { steady: { p99: 6 }, switch: { p99: options.switchP99 ?? 9 }, booting: { p99: 7 } },
    },
    overhead: {
      wall: { median: 3.6, max: 3.9 },
      app: { median: 3.2 },
      overhead: { median: overhead, max: 0.6, each: Array.from({ length: deploys }, () => overhead) },
    },
    limit: { total: 0.62 },
  } as unknown as OurResult;
}

const original = notMeasured('left out of a quick run') as unknown as FlowResult;
const proxy = { oursOverOriginal: 2.6 } as unknown as ProxyFigures;

describe('judgeGoals', () => {
  test('a full run calls each promise met or NOT MET, in the product’s words', () => {
    const goals = judgeGoals(ours(), original, proxy, 'full');
    expect(goals.map((g) => g.status)).toEqual(['met', 'met', 'met', 'met']);
    expect(goals[0]!.goal).toMatch(/^A swap drops no request: /);
    expect(goals.map((g) => g.goal).join('\n')).not.toMatch(/issue|physical limit/i);
    expect(goals[1]!.measured).toContain('one poll interval + one reload 0.62 s');
    expect(judgeGoals(ours({ overhead: 0.7, switchP99: 20 }), original, { oursOverOriginal: 2.0 } as unknown as ProxyFigures, 'full').map((g) => g.status)).toEqual([
      'met',
      'NOT MET',
      'NOT MET',
      'NOT MET',
    ]);
  });

  test('a quick run judges none, and says what each figure would need', () => {
    const goals = judgeGoals(ours({ deploys: 3, overhead: 0.7, switchP99: 20 }), original, { oursOverOriginal: 2.0 } as unknown as ProxyFigures, 'quick');
    expect(goals.map((g) => g.status)).toEqual(['not judged', 'not judged', 'not judged', 'not judged']);
    expect(goals[0]!.measured).toContain('only 3 swaps (the promise is judged over at least 20: run without --quick)');
    expect(goals[1]!.measured).toContain('not judged on a quick run: a median of 3 deploys, the promise needs 20');
    expect(goals[2]!.measured).toContain('not judged on a quick run: short wrk runs');
    expect(goals[3]!.measured).toContain('not judged on a quick run: the p99 of 3 switches, the promise needs 20');
  });

  test('a failed request is NOT MET on a quick run too', () => {
    expect(judgeGoals(ours({ deploys: 3, failed: 1 }), original, proxy, 'quick')[0]!.status).toBe('NOT MET');
  });

  test('a figure that was not measured stays not measured, with why', () => {
    const goals = judgeGoals(ours(), original, notMeasured('wrk is not installed') as unknown as ProxyFigures, 'quick');
    expect(goals[2]).toMatchObject({ status: 'not measured', measured: 'not measured: wrk is not installed' });
  });
});
