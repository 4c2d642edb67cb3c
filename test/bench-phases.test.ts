/**
 * How the bench reads one deploy's time: the app's own timeline from its log lines, and the
 * engine's progress lines placed on the same clock, split into phases that add up to the deploy.
 */
import { describe, expect, test } from 'vitest';
import { appReadySeconds, appTimeline, standbyStopSeconds } from '../bench/lib/applog.js';
import { deployPhases, engineZeroMs, OVERHEAD_PHASES, rollbackPhases, spreadDelays, type ProgressLine } from '../bench/lib/phases.js';

const T0 = Date.parse('2026-12-02T10:00:00.000Z');
const at = (ms: number): string => new Date(T0 + ms).toISOString();
const line = (ms: number, text: string): string => `${at(ms)}  INFO 4242 --- [           main] bluegreen.sample.SampleApp : ${text}`;

/** What one deploy appends to its slot's log: the old standby stops, the new app starts and becomes ready 2 s later. */
const LOG = [
  line(100, 'Stopping SampleApp: waiting for 0 in-flight request(s)'),
  line(115, 'Stopped SampleApp'),
  `${at(150)} bluegreen: starting green (v2)`,
  line(400, 'Starting SampleApp v2 using Java 17.0.15 with PID 4242 (profile green)'),
  line(3500, 'Web server started on port 18382 (http) at 127.0.0.1'),
  line(3500, 'Started SampleApp in 3.100 seconds (process running for 3.300)'),
  line(3500, 'Readiness is REFUSING_TRAFFIC for 2000 ms (simulated bluegreen.ready-delay-ms): health is DOWN until then'),
  line(5501, 'Application availability state ReadinessState changed to ACCEPTING_TRAFFIC'),
].join('\n');

describe('the app timeline', () => {
  test('reads the old standby stop, the JVM start (Started less "process running for") and readiness', () => {
    expect(appTimeline(LOG)).toEqual({ stoppingMs: T0 + 100, stoppedMs: T0 + 115, jvmStartMs: T0 + 200, readyMs: T0 + 5501 });
    expect(appReadySeconds(LOG)).toBeCloseTo(5.301, 6);
    expect(standbyStopSeconds(LOG, true)).toBeCloseTo(0.015, 6);
    expect(standbyStopSeconds(LOG, false)).toBe(0);
  });

  test('says why a figure is missing instead of guessing one', () => {
    const noStop = LOG.split('\n').slice(2).join('\n');
    expect(standbyStopSeconds(noStop, true)).toEqual({
      notMeasured: 'the engine stopped the old standby, but its log has no "Stopping" and "Stopped" lines',
    });
    const notReady = LOG.split('\n').slice(0, -1).join('\n');
    expect(appReadySeconds(notReady)).toEqual({
      notMeasured: 'the app logged "Started" but no "ReadinessState changed to ACCEPTING_TRAFFIC" line',
    });
    expect(appReadySeconds('')).toEqual({ notMeasured: 'no "Started ... (process running for ...)" line in the app log' });
  });

  test('an earlier app in the same log (before the last Starting line) is not the new one', () => {
    const earlier = [line(-5000, 'Starting SampleApp v1 using Java 17 with PID 1'), line(-4000, 'Started SampleApp in 0.5 seconds (process running for 0.600)'), line(-3999, 'Application availability state ReadinessState changed to ACCEPTING_TRAFFIC')];
    expect(appTimeline([...earlier, LOG].join('\n')).jvmStartMs).toBe(T0 + 200);
  });
});

describe('phases', () => {
  // The engine started 20 ms after the bench spawned it; the bench reads each line 3 to 9 ms late.
  const engineZero = T0 + 20;
  const progress = (seconds: number, phase: string, late: number): ProgressLine => ({ phase, seconds, readAtMs: engineZero + seconds * 1000 + late });
  const lines = [
    progress(0.01, 'lock', 9),
    progress(0.05, 'check', 5),
    progress(0.06, 'release', 4),
    progress(0.06, 'drain', 3),
    progress(0.07, 'stop', 6),
    progress(0.16, 'start', 3),
    progress(5.78, 'health', 4),
    progress(5.79, 'switch', 5),
    progress(5.99, 'verify', 3),
    progress(6.03, 'done', 4),
  ];
  const wallSeconds = 6.06;

  test('the engine clock is placed by its earliest-read line, never before the spawn', () => {
    expect(engineZeroMs(T0, lines)).toBe(engineZero + 3);
    expect(engineZeroMs(T0 + 50, lines)).toBe(T0 + 50);
    expect(engineZeroMs(T0, [])).toBe(T0);
  });

  test('a deploy splits into phases that add up to its wall time; its overhead leaves out the two apps', () => {
    const p = deployPhases(T0, wallSeconds, lines, appTimeline(LOG), 0.015);
    const zero = engineZero + 3;
    expect(p.standbyStop).toBeCloseTo(0.015, 6);
    expect(p.beforeStart).toBeCloseTo((zero + 160 - T0) / 1000 - 0.015, 6);
    expect(p.launch).toBeCloseTo((T0 + 200 - (zero + 160)) / 1000, 6);
    expect(p.appOwn).toBeCloseTo(5.301, 6);
    expect(p.noticed).toBeCloseTo((zero + 5780 - (T0 + 5501)) / 1000, 6);
    expect(p.toSwitch).toBeCloseTo(0.01, 6);
    expect(p.switch).toBeCloseTo(0.2, 6);
    expect(p.after).toBeCloseTo((T0 + 6060 - (zero + 5990)) / 1000, 6);
    const total = Object.values(p).reduce((a, b) => a + b, 0);
    expect(total).toBeCloseTo(wallSeconds, 6);
    const overhead = OVERHEAD_PHASES.reduce((a, k) => a + p[k]!, 0);
    expect(overhead).toBeCloseTo(wallSeconds - 5.301 - 0.015, 6);
  });

  test('a phase whose ends are not both known is left out, not made up', () => {
    const p = deployPhases(T0, wallSeconds, lines.filter((l) => l.phase !== 'health'), {}, { notMeasured: 'no log' });
    expect(Object.keys(p).sort()).toEqual(['after', 'switch']);
  });

  test('a rollback splits into before the switch, the switch and after it', () => {
    const rb = [progress(0.01, 'lock', 4), progress(0.02, 'health', 5), progress(0.03, 'switch', 6), progress(0.31, 'verify', 3), progress(0.35, 'done', 4)];
    const p = rollbackPhases(T0, 0.4, rb);
    expect(p.beforeSwitch! + p.switch! + p.after!).toBeCloseTo(0.4, 6);
    expect(p.switch).toBeCloseTo(0.28, 6);
  });
});

describe('the DOWN times of the not-ready series', () => {
  test('spread evenly over one poll interval around the centre, so readiness falls at every point between two probes', () => {
    expect(spreadDelays(2000, 500, 10)).toEqual([1750, 1800, 1850, 1900, 1950, 2000, 2050, 2100, 2150, 2200]);
    const phases = new Set(spreadDelays(2000, 500, 10).map((d) => d % 500));
    expect(phases.size).toBe(10);
    expect(spreadDelays(2000, 0, 3)).toEqual([2000, 2000, 2000]);
    expect(spreadDelays(100, 500, 2)).toEqual([0, 100]);
  });
});
