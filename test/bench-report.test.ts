/**
 * How the bench judges the README's promises: a full run calls each met or NOT MET; a quick run
 * prints the same figures but judges none of them, except that a failure is NOT MET on any run.
 */
import { describe, expect, test } from 'vitest';
import { notMeasured } from '../bench/lib/figures.js';
import type { ProxyFigures } from '../bench/lib/proxy.js';
import { judgeGoals, renderSummary, type BenchResult, type FlowResult, type OurResult, type RollbackResult, type SeriesResult } from '../bench/lib/report.js';

function swapFigures(deploys: number, failed = 0) {
  return {
    deploys,
    succeeded: deploys,
    newVersionServed: deploys,
    requests: 1000,
    failed,
    failedNewConnection: 0,
    failedKeepAlive: failed,
    rawResets: 1,
    resetsPerSwap: { median: 0, max: 1, each: Array.from({ length: deploys }, () => 0) },
    latency: { steady: { p99: 6 }, switch: { p99: 9 }, booting: { p99: 7 } },
  };
}

const PHASES = { beforeStart: 0.12, standbyStop: 0.02, launch: 0.05, appOwn: 3.3, noticed: 0.31, toSwitch: 0, switch: 0.2, after: 0.04 };

function notReady(options: { deploys?: number; overhead?: number; failed?: number; readyDelayMs?: number } = {}): SeriesResult {
  const deploys = options.deploys ?? 10;
  const overhead = options.overhead ?? 1.1;
  return {
    setup: null,
    deploys: [],
    readyDelayMs: options.readyDelayMs ?? 2000,
    swaps: swapFigures(deploys, options.failed),
    overhead: {
      wall: { median: 6.4, max: 6.9 },
      app: { median: 5.3 },
      stop: { median: 0.02 },
      overhead: { median: overhead, max: 1.4, each: Array.from({ length: deploys }, () => overhead) },
    },
    phases: PHASES,
  } as unknown as SeriesResult;
}

function rollback(options: { count?: number; max?: number; failed?: number } = {}): RollbackResult {
  const count = options.count ?? 5;
  const max = options.max ?? 0.45;
  return {
    swaps: swapFigures(count, options.failed),
    wall: { median: 0.4, max, each: [...Array.from({ length: count - 1 }, () => 0.4), max] },
    deploys: [],
    phases: { beforeSwitch: 0.1, switch: 0.25, after: 0.04 },
  } as unknown as RollbackResult;
}

function ours(
  options: {
    failed?: number;
    deploys?: number;
    overhead?: number;
    switchP99?: number;
    notReady?: SeriesResult | ReturnType<typeof notMeasured>;
    rollback?: RollbackResult | ReturnType<typeof notMeasured>;
  } = {},
): OurResult {
  const deploys = options.deploys ?? 20;
  const overhead = options.overhead ?? 0.35;
  return {
    notReady: options.notReady ?? notReady(),
    rollback: options.rollback ?? rollback(),
    phases: PHASES,
    readyDelayMs: 0,
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
      stop: { median: 0.02 },
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
    expect(goals.map((g) => g.status)).toEqual(['met', 'met', 'met', 'met', 'NOT MET', 'met']);
    expect(goals[0]!.goal).toMatch(/^A swap drops no request: /);
    expect(goals.map((g) => g.goal).join('\n')).not.toMatch(/issue|physical limit/i);
    expect(goals[1]!.measured).toContain('one poll interval + one reload 0.62 s');
    expect(
      judgeGoals(
        ours({ overhead: 0.7, switchP99: 20, notReady: notReady({ overhead: 0.45 }), rollback: rollback({ max: 0.51 }) }),
        original,
        { oursOverOriginal: 2.0 } as unknown as ProxyFigures,
        'full',
      ).map((g) => g.status),
    ).toEqual(['met', 'NOT MET', 'NOT MET', 'NOT MET', 'met', 'NOT MET']);
  });

  test('a quick run judges none, and says what each figure would need', () => {
    const goals = judgeGoals(
      ours({ deploys: 3, overhead: 0.7, switchP99: 20, notReady: notReady({ deploys: 2 }), rollback: rollback({ max: 0.9 }) }),
      original,
      { oursOverOriginal: 2.0 } as unknown as ProxyFigures,
      'quick',
    );
    expect(goals.map((g) => g.status)).toEqual(['not judged', 'not judged', 'not judged', 'not judged', 'not judged', 'not judged']);
    expect(goals[0]!.measured).toContain('only 3 swaps (the promise is judged over at least 20: run without --quick)');
    expect(goals[1]!.measured).toContain('not judged on a quick run: a median of 3 deploys, the promise needs 20');
    expect(goals[2]!.measured).toContain('not judged on a quick run: short wrk runs');
    expect(goals[3]!.measured).toContain('not judged on a quick run: the p99 of 3 switches, the promise needs 20');
    expect(goals[4]!.measured).toContain('not judged on a quick run: a median of 2 deploys, the promise needs 10');
    expect(goals[5]!.measured).toContain('not judged on a quick run');
  });

  test('a failed request is NOT MET on a quick run too', () => {
    expect(judgeGoals(ours({ deploys: 3, failed: 1 }), original, proxy, 'quick')[0]!.status).toBe('NOT MET');
  });

  test('the two new promises name what they judge: the app DOWN for 2 s after its port opens, every rollback', () => {
    const goals = judgeGoals(ours(), original, proxy, 'full');
    expect(goals[4]!.goal).toBe('Median deploy overhead ≤ 0.5 s for an app that is DOWN for 2 s after its port opens');
    expect(goals[4]!.measured).toMatch(/^1\.10 s \(max 1\.40 s; 10 deploys of an app DOWN for 2000 ms after its port opens; ready to noticed 0\.31 s, median\)$/);
    expect(goals[5]!.goal).toMatch(/^Every rollback ≤ 0\.5 s/);
    expect(goals[5]!.measured).toContain('max 0.45 s, median 0.40 s over 5 rollbacks (each: 0.40 0.40 0.40 0.40 0.45); 0 failed requests of 1000');
  });

  test('the new promises are judged on their own figures only: a longer DOWN time, too few deploys or rollbacks', () => {
    const statuses = (o: OurResult): string[] => judgeGoals(o, original, proxy, 'full').slice(4).map((g) => g.status);
    expect(statuses(ours({ notReady: notReady({ overhead: 0.4, readyDelayMs: 3000 }) }))).toEqual(['not judged', 'met']);
    expect(statuses(ours({ notReady: notReady({ overhead: 0.4, deploys: 9 }), rollback: rollback({ count: 4 }) }))).toEqual(['not judged', 'not judged']);
    expect(judgeGoals(ours({ notReady: notReady({ deploys: 9 }) }), original, proxy, 'full')[4]!.measured).toContain(
      'not judged: a median of 9 deploys, the promise needs 10 (--ready-swaps)',
    );
  });

  test('a request dropped by the DOWN app or a rollback fails "a swap drops no request" and its own promise, on any run', () => {
    for (const mode of ['full', 'quick'] as const) {
      const byRollback = judgeGoals(ours({ rollback: rollback({ failed: 2 }) }), original, proxy, mode);
      expect([byRollback[0]!.status, byRollback[5]!.status]).toEqual(['NOT MET', 'NOT MET']);
      expect(byRollback[0]!.measured).toContain('; rollbacks: 2 failed of 1000');
      const byNotReady = judgeGoals(ours({ notReady: notReady({ overhead: 0.4, failed: 1 }) }), original, proxy, mode);
      expect([byNotReady[0]!.status, byNotReady[4]!.status]).toEqual(['NOT MET', 'NOT MET']);
      expect(byNotReady[0]!.measured).toContain('; the app DOWN after its port opens: 1 failed of 1000');
    }
  });

  test('series that were not run stay not measured, with why', () => {
    const goals = judgeGoals(
      ours({ notReady: notMeasured('skipped with --ready-swaps 0'), rollback: notMeasured('skipped with --rollbacks 0') }),
      original,
      proxy,
      'full',
    );
    expect(goals[0]!.status).toBe('met');
    expect(goals[4]).toMatchObject({ status: 'not measured', measured: 'not measured: skipped with --ready-swaps 0' });
    expect(goals[5]).toMatchObject({ status: 'not measured', measured: 'not measured: skipped with --rollbacks 0' });
  });

  test('a figure that was not measured stays not measured, with why', () => {
    const goals = judgeGoals(ours(), original, notMeasured('wrk is not installed') as unknown as ProxyFigures, 'quick');
    expect(goals[2]).toMatchObject({ status: 'not measured', measured: 'not measured: wrk is not installed' });
  });
});

describe('renderSummary', () => {
  test('the summary shows both kinds of app, the rollbacks and where the time goes by phase', () => {
    const o = ours();
    const result = {
      title: 't',
      machine: { date: '2026-12-02T10:00:00.000Z', cpu: 'cpu', cores: 2, memoryGiB: 4, os: 'os', kernel: 'k', nginx: 'n', java: 'j', node: 'v20', wrk: 'w', loadAtStart: 0.5, commit: 'abc' },
      settings: { mode: 'full', readyDelayMs: 2000 },
      seconds: 500,
      loadAtEnd: 1,
      ours: o,
      original,
      proxy: notMeasured('wrk is not installed'),
      goals: judgeGoals(o, original, proxy, 'full'),
    } as unknown as BenchResult;
    const summary = renderSummary(result, 'r.md');
    expect(summary).toContain('| deploy overhead, median / max (s), app DOWN for 2.0 s after its port opens | 1.10 / 1.40 |');
    expect(summary).toContain('| rollback to the warm standby, median / max (s) | 0.40 / 0.45 |');
    expect(summary).toContain('### Where the time goes, by phase (medians, s)');
    expect(summary).toContain('| phase | ready when its port opens | DOWN for 2.0 s after its port opens | rollback |');
    expect(summary).toMatch(/\| ready to noticed: readiness line to the engine's health line \| 0\.31 \| 0\.31 \| {2}\|/);
    expect(summary).toMatch(/\| the switch: switch line to verify line [^|]*\| 0\.20 \| 0\.20 \| 0\.25 \|/);
    expect(summary).toMatch(/\| rollback: before the switch line \(lock, the standby's health check\) \| {2}\| {2}\| 0\.10 \|/);
    expect(summary).toContain('| overhead (deploys) or time (rollbacks), median / max | 0.35 / 0.60 | 1.10 / 1.40 | 0.40 / 0.45 |');
  });
});
