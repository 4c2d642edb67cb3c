/**
 * The benchmark's result: what ec2-bluegreen promises, judged against the run's figures, and the same
 * tables as plain text (terminal), Markdown (bench/results/, docs/BENCHMARKS.md) and JSON.
 */
import { fmt, fmtCount, fmtRatio, isMeasured, notMeasured, ratio, type Figure, type NotMeasured } from './figures.js';
import type { LatencyFigures, OverheadFigures, SwapFigures, TimedDeploy } from './harness.js';
import { machineLine, type Machine } from './machine.js';
import type { ReloadMeasurement } from './ours.js';
import { DEPLOY_PHASES, ROLLBACK_PHASES, type DeployPhaseName, type RollbackPhaseName } from './phases.js';
import type { ProxyFigures } from './proxy.js';

export interface FlowResult {
  readonly setup: TimedDeploy | null;
  readonly swaps: SwapFigures;
  readonly overhead: OverheadFigures;
  readonly deploys: TimedDeploy[];
}

/** One kind of app deployed through our engine under load. */
export interface SeriesResult extends FlowResult {
  /** How long the app's health stays DOWN after its port opens. */
  readonly readyDelayMs: number;
  /** Medians of where each deploy's time goes, from the engine's progress lines and the app's log (seconds). */
  readonly phases: Record<DeployPhaseName, Figure>;
}

/** Rollbacks to the warm standby (`bluegreen rollback`) under the same load. */
export interface RollbackResult {
  readonly swaps: SwapFigures;
  readonly wall: { readonly median: Figure; readonly max: Figure; readonly each: number[] };
  readonly deploys: TimedDeploy[];
  readonly phases: Record<RollbackPhaseName, Figure>;
}

export interface OurResult extends SeriesResult {
  /** The same deploys with an app whose health is DOWN for a while after its port opens. */
  readonly notReady: Section<SeriesResult>;
  readonly rollback: Section<RollbackResult>;
  /** One health poll interval plus one Nginx reload (timed under the deploys' load). */
  readonly limit: {
    readonly healthInterval: Figure;
    readonly reloadIdle: ReloadMeasurement;
    readonly reloadUnderLoad: ReloadMeasurement;
    readonly total: Figure;
  };
}

export interface Settings {
  readonly mode: 'full' | 'quick';
  readonly swaps: number;
  readonly originalDeploys: number;
  readonly startDelayMs: number;
  /** Deploys of the app that is DOWN for `readyDelayMs` after its port opens (0: not run). */
  readonly readySwaps: number;
  readonly readyDelayMs: number;
  /** Each of those deploys' DOWN time, spread around `readyDelayMs` over one poll interval. */
  readonly readyDelays?: readonly number[];
  readonly rollbacks: number;
  readonly healthInterval: string;
  /** Warm-up GETs to the new slot before its switch (BLUEGREEN_WARMUP_REQUESTS). */
  readonly warmupRequests: string;
  readonly load: Readonly<Record<string, number>>;
  readonly warmupMs: number;
  readonly gapMs: number;
  readonly wrk: Readonly<Record<string, number>>;
}

export type Section<T> = T | NotMeasured;

export interface BenchResult {
  readonly title: string;
  readonly machine: Machine;
  readonly settings: Settings;
  readonly seconds: number;
  readonly loadAtEnd: number;
  readonly ours: Section<OurResult>;
  readonly original: Section<FlowResult>;
  readonly proxy: Section<ProxyFigures>;
  readonly goals: Goal[];
}

/**
 * `not judged`: measured, but on too little to hold the promise to (a quick run); what the
 * figure would need is in `measured`. A failed request is never "too little": it is NOT MET.
 */
export type GoalStatus = 'met' | 'NOT MET' | 'not measured' | 'not judged';

export interface Goal {
  readonly goal: string;
  readonly measured: string;
  readonly status: GoalStatus;
}

export function measured<T extends object>(s: Section<T>): s is T {
  return !('notMeasured' in s);
}

/** The README's promises, each with the figure that holds it to account. */
const GOALS = {
  noFailures:
    'A swap drops no request: 0 failed over all swaps (new connections, and keep-alive with the standard resend); raw keep-alive resets reported per swap',
  overhead: "A swap costs little beyond the app's own start: median deploy overhead ≤ 0.5 s (the original scripts: at least 13 s of fixed sleeps)",
  throughput: "Nginx in front costs less than with the original's configuration: through-Nginx throughput ≥ 2.5× the original's on the same machine",
  switchLatency: 'Users barely notice a switch: p99 latency within 2 s of a switch ≤ 2× steady state',
  notReadyOverhead: 'Median deploy overhead ≤ 0.5 s for an app that is DOWN for 2 s after its port opens',
  rollback: 'Every rollback ≤ 0.5 s (to the warm standby, under the same load, 0 failed requests)',
} as const;

/** The app the DOWN-after-port-open promise is about, and how many deploys and rollbacks judge the new promises. */
export const NOT_READY_PROMISE_MS = 2000;
export const NOT_READY_MIN_DEPLOYS = 10;
export const MIN_ROLLBACKS = 5;

/** What a quick run measures too little of to judge each promise, said in its `measured`. */
const QUICK_TOO_LITTLE = 'not judged on a quick run';

function judged(goal: string, value: Figure, met: (v: number) => boolean, text: string, tooLittle?: string): Goal {
  if (!isMeasured(value)) return { goal, measured: text, status: 'not measured' };
  if (tooLittle !== undefined) return { goal, measured: `${text}; ${tooLittle}`, status: 'not judged' };
  return { goal, measured: text, status: met(value) ? 'met' : 'NOT MET' };
}

/**
 * The promises, judged on this run's figures. A quick run (`mode` 'quick') measures each of them
 * too briefly to call it met: its figures are printed, marked `not judged` with what they would
 * need, except that a failed request or deploy is NOT MET on any run.
 */
export function judgeGoals(
  ours: Section<OurResult>,
  original: Section<FlowResult>,
  proxy: Section<ProxyFigures>,
  mode: Settings['mode'] = 'full',
): Goal[] {
  const quick = mode === 'quick';
  const unmeasured = (goal: string, s: NotMeasured): Goal => ({ goal, measured: `not measured: ${s.notMeasured}`, status: 'not measured' });
  const goals: Goal[] = [];

  if (!measured(ours)) {
    goals.push(unmeasured(GOALS.noFailures, ours), unmeasured(GOALS.overhead, ours));
  } else {
    const s = ours.swaps;
    const failedDeploys = s.deploys - s.succeeded;
    // The other series are swaps too: a request they drop breaks the same promise.
    const others = [
      ...(measured(ours.notReady) ? [['the app DOWN after its port opens', ours.notReady.swaps] as const] : []),
      ...(measured(ours.rollback) ? [['rollbacks', ours.rollback.swaps] as const] : []),
    ];
    const otherFailures = others.reduce((n, [, o]) => n + o.failed + o.deploys - o.succeeded, 0);
    const clean = s.failed === 0 && failedDeploys === 0 && otherFailures === 0;
    goals.push({
      goal: GOALS.noFailures,
      measured:
        `${s.failed} failed of ${s.requests} (new-connection ${s.failedNewConnection}, keep-alive after resend ${s.failedKeepAlive}); ` +
        `raw resets ${s.rawResets}, per swap: ${s.resetsPerSwap.each.join(' ')}` +
        (failedDeploys ? `; ${failedDeploys} deploy(s) failed` : '') +
        (s.deploys < 20 ? `; only ${s.deploys} swaps (the promise is judged over at least 20: run without --quick)` : '') +
        others
          .map(([what, o]) => `; ${what}: ${o.failed} failed of ${o.requests}, raw resets ${o.rawResets}${o.deploys > o.succeeded ? `, ${o.deploys - o.succeeded} failed` : ''}`)
          .join(''),
      status: s.deploys === 0 ? 'not measured' : !clean ? 'NOT MET' : quick ? 'not judged' : 'met',
    });
    const m = ours.overhead.overhead.median;
    // Why the original was not measured is said once, in its own section.
    const orig = measured(original) ? fmt(original.overhead.overhead.median, 2, ' s') : 'not measured';
    goals.push(
      judged(
        GOALS.overhead,
        m,
        (v) => v <= 0.5,
        `${fmt(m, 2, ' s')} (max ${fmt(ours.overhead.overhead.max, 2, ' s')}; one poll interval + one reload ${fmt(ours.limit.total, 2, ' s')}; original ${orig})`,
        quick ? `${QUICK_TOO_LITTLE}: a median of ${ours.overhead.overhead.each.length} deploys, the promise needs 20` : undefined,
      ),
    );
  }

  if (!measured(proxy)) goals.push(unmeasured(GOALS.throughput, proxy));
  else {
    goals.push(
      judged(
        GOALS.throughput,
        proxy.oursOverOriginal,
        (v) => v >= 2.5,
        fmtRatio(proxy.oursOverOriginal),
        quick ? `${QUICK_TOO_LITTLE}: short wrk runs, the promise needs three rounds of 8 s` : undefined,
      ),
    );
  }

  if (!measured(ours)) goals.push(unmeasured(GOALS.switchLatency, ours));
  else {
    const l = ours.swaps.latency;
    const r = ratio(l.switch.p99, l.steady.p99);
    goals.push(
      judged(
        GOALS.switchLatency,
        r,
        (v) => v <= 2,
        `${fmtRatio(r)} (${fmt(l.switch.p99, 1, ' ms')} within 2 s of a switch, ${fmt(l.steady.p99, 1, ' ms')} steady)`,
        quick ? `${QUICK_TOO_LITTLE}: the p99 of ${ours.swaps.deploys} switches, the promise needs 20` : undefined,
      ),
    );
  }

  goals.push(notReadyGoal(ours, quick), rollbackGoal(ours, quick));
  return goals;
}

function notReadyGoal(ours: Section<OurResult>, quick: boolean): Goal {
  const goal = GOALS.notReadyOverhead;
  const series = measured(ours) ? ours.notReady : ours;
  if (!measured(series)) return { goal, measured: `not measured: ${series.notMeasured}`, status: 'not measured' };
  const o = series.overhead.overhead;
  const failed = series.swaps.failed + series.swaps.deploys - series.swaps.succeeded;
  const text =
    `${fmt(o.median, 2, ' s')} (max ${fmt(o.max, 2, ' s')}; ${series.swaps.deploys} deploys of an app DOWN for ${series.readyDelayMs} ms after its port opens; ` +
    `ready to noticed ${fmt(series.phases.noticed, 2, ' s')}, median)`;
  if (failed > 0) return { goal, measured: `${text}; ${failed} failed request(s) or deploy(s)`, status: 'NOT MET' };
  const tooLittle = quick
    ? `${QUICK_TOO_LITTLE}: a median of ${o.each.length} deploys, the promise needs ${NOT_READY_MIN_DEPLOYS}`
    : series.readyDelayMs !== NOT_READY_PROMISE_MS
      ? `not judged: the promise is about an app DOWN for ${NOT_READY_PROMISE_MS} ms (--ready-delay-ms ${NOT_READY_PROMISE_MS})`
      : o.each.length < NOT_READY_MIN_DEPLOYS
        ? `not judged: a median of ${o.each.length} deploys, the promise needs ${NOT_READY_MIN_DEPLOYS} (--ready-swaps)`
        : undefined;
  return judged(goal, o.median, (v) => v <= 0.5, text, tooLittle);
}

function rollbackGoal(ours: Section<OurResult>, quick: boolean): Goal {
  const goal = GOALS.rollback;
  const r = measured(ours) ? ours.rollback : ours;
  if (!measured(r)) return { goal, measured: `not measured: ${r.notMeasured}`, status: 'not measured' };
  const s = r.swaps;
  const failedRollbacks = s.deploys - s.succeeded;
  const text =
    `max ${fmt(r.wall.max, 2, ' s')}, median ${fmt(r.wall.median, 2, ' s')} over ${s.deploys} rollbacks ` +
    `(each: ${r.wall.each.map((w) => w.toFixed(2)).join(' ')}); ${s.failed} failed requests of ${s.requests}, raw resets ${s.rawResets}` +
    (failedRollbacks ? `; ${failedRollbacks} rollback(s) failed` : '');
  if (s.failed > 0 || failedRollbacks > 0) return { goal, measured: text, status: 'NOT MET' };
  const tooLittle = quick
    ? `${QUICK_TOO_LITTLE}: short steady time between rollbacks`
    : s.deploys < MIN_ROLLBACKS
      ? `not judged: ${s.deploys} rollbacks, the promise needs ${MIN_ROLLBACKS} (--rollbacks)`
      : undefined;
  return judged(goal, r.wall.max, (v) => v <= 0.5, text, tooLittle);
}

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------

/** Reasons for figures a table could not show, printed under it as [1], [2], ... */
class Footnotes {
  readonly reasons: string[] = [];

  /** A figure, or "n/m [i]" with its reason kept as footnote i. */
  cell(f: Figure, digits = 2, unit = ''): string {
    if (isMeasured(f)) return fmt(f, digits, unit);
    return `n/m ${this.mark(f.notMeasured)}`;
  }

  ratioCell(f: Figure): string {
    if (isMeasured(f)) return fmtRatio(f);
    return `n/a ${this.mark(f.notMeasured)}`;
  }

  pair(a: Figure, b: Figure, digits: number): string {
    return `${this.cell(a, digits)} / ${this.cell(b, digits)}`;
  }

  private mark(reason: string): string {
    let i = this.reasons.indexOf(reason);
    if (i < 0) i = this.reasons.push(reason) - 1;
    return `[${i + 1}]`;
  }

  lines(): string[] {
    return this.reasons.map((r, i) => `[${i + 1}] not measured: ${r}`);
  }
}

interface Table {
  readonly title: string;
  readonly head: string[];
  readonly rows: string[][];
  readonly notes: string[];
}

/** A section that reads better as a list than as a table (long cells). */
interface List {
  readonly title: string;
  readonly items: { readonly head: string; readonly lines: string[] }[];
  readonly notes: string[];
}

function textTable(t: Table): string {
  const widths = t.head.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [t.title, `  ${line(t.head)}`, ...t.rows.map((r) => `  ${line(r)}`), ...t.notes.map((n) => `  ${n}`)].join('\n');
}

function markdownTable(t: Table, level = '###'): string {
  const esc = (c: string): string => c.replaceAll('|', '\\|');
  return [
    `${level} ${t.title}`,
    '',
    `| ${t.head.map(esc).join(' | ')} |`,
    `|${t.head.map(() => '---').join('|')}|`,
    ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
    ...(t.notes.length ? ['', ...t.notes.map((n) => `${n}  `)] : []),
  ].join('\n');
}

function textList(l: List): string {
  return [l.title, ...l.items.flatMap((i) => [`  ${i.head}`, ...i.lines.map((x) => `      ${x}`)]), ...l.notes.map((n) => `  ${n}`)].join('\n');
}

function markdownList(l: List): string {
  return [
    `### ${l.title}`,
    '',
    ...l.items.flatMap((i) => [`- ${i.head}`, ...i.lines.map((x) => `  - ${x}`)]),
    ...(l.notes.length ? ['', ...l.notes.map((n) => `${n}  `)] : []),
  ].join('\n');
}

function latencyCell(notes: Footnotes, l: LatencyFigures): string {
  return `${notes.pair(l.p50, l.p99, 1)} (n=${l.count})`;
}

function failedShare(s: SwapFigures): Figure {
  return s.requests ? s.failed / s.requests : notMeasured('no requests');
}

function swapsTable(r: BenchResult): Table {
  const notes = new Footnotes();
  const ours = measured(r.ours) ? r.ours.swaps : undefined;
  const orig = measured(r.original) ? r.original.swaps : undefined;
  const both = ours !== undefined && orig !== undefined;
  const row = (label: string, cell: (s: SwapFigures) => string, rat?: (o: SwapFigures, g: SwapFigures) => Figure): string[] => [
    label,
    ours ? cell(ours) : '',
    orig ? cell(orig) : '',
    both && rat ? notes.ratioCell(rat(ours, orig)) : '',
  ];
  const rows = [
    row('deploys under load', (s) => `${s.deploys} (${s.succeeded} exit 0)`),
    row('only the new version answered after its switch', (s) => `${s.newVersionServed} of ${s.deploys}`),
    row('requests', (s) => `${s.requests} in ${s.loadSeconds.toFixed(0)} s`),
    row('non-2xx answers', (s) => fmtCount(s.non2xx, s.requests)),
    row('failed after the standard resend', (s) => fmtCount(s.failed, s.requests), (o, g) => ratio(failedShare(o), failedShare(g))),
    row('  of which new-connection / keep-alive', (s) => `${s.failedNewConnection} / ${s.failedKeepAlive}`),
    row(
      'raw keep-alive resets (each resent once)',
      (s) => `${s.rawResets} (per swap: median ${notes.cell(s.resetsPerSwap.median, 0)}, max ${notes.cell(s.resetsPerSwap.max, 0)})`,
    ),
    row('p50 / p99 ms, steady state', (s) => latencyCell(notes, s.latency.steady), (o, g) => ratio(o.latency.steady.p99, g.latency.steady.p99)),
    row('p50 / p99 ms, within 2 s of a switch', (s) => latencyCell(notes, s.latency.switch), (o, g) => ratio(o.latency.switch.p99, g.latency.switch.p99)),
    row('p50 / p99 ms, while the new app boots', (s) => latencyCell(notes, s.latency.booting)),
    row('p99 within 2 s of a switch ÷ steady p99', (s) => notes.ratioCell(ratio(s.latency.switch.p99, s.latency.steady.p99))),
  ];
  const extra = [
    'Latency: successful GET and POST requests (the deliberately slow ones left out), by when they started; "steady" is no ' +
      'deploy running and more than 2 s from any switch; "ours ÷ original" compares the share of failed requests and the p99.',
  ];
  if (!ours) extra.push(`ours: not measured: ${(r.ours as NotMeasured).notMeasured}`);
  if (!orig) extra.push(`original: not measured: ${(r.original as NotMeasured).notMeasured}`);
  if (ours) extra.push(`Ours, raw resets per swap: ${ours.resetsPerSwap.each.join(' ')}`);
  if (measured(r.ours)) {
    const load = r.ours.limit.reloadUnderLoad.load;
    if (load) {
      extra.push(
        `For comparison, ${r.ours.limit.reloadUnderLoad.each.length} bare \`nginx -s reload\`s (no deploy) under the same load gave ` +
          `${load.rawResets} raw resets and ${load.failed} failed requests of ${load.requests}.`,
      );
    }
  }
  for (const [name, s] of [
    ['Ours', ours],
    ['Original', orig],
  ] as const) {
    if (s && Object.keys(s.failuresByReason).length) {
      extra.push(`${name}, failures by reason: ${Object.entries(s.failuresByReason).map(([k, v]) => `${k} ×${v}`).join(', ')}`);
    }
    if (s?.samplesDropped) extra.push(`${name}: ${s.samplesDropped} samples not kept (latency and per-swap figures leave them out).`);
  }
  return {
    title: '1. Swaps under load',
    head: ['', 'ours', 'original', 'ours ÷ original'],
    rows,
    notes: [...extra, ...notes.lines()],
  };
}

function overheadTable(r: BenchResult): Table {
  const notes = new Footnotes();
  const ours = measured(r.ours) ? r.ours : undefined;
  const orig = measured(r.original) ? r.original : undefined;
  const row = (label: string, cell: (o: OverheadFigures) => string, rat?: (o: OverheadFigures) => Figure): string[] => [
    label,
    ours ? cell(ours.overhead) : '',
    orig ? cell(orig.overhead) : '',
    ours && orig && rat ? notes.ratioCell(ratio(rat(ours.overhead), rat(orig.overhead))) : '',
  ];
  const rows = [
    row('deploy time, median / max (s)', (o) => notes.pair(o.wall.median, o.wall.max, 2), (o) => o.wall.median),
    row("app's own start-to-ready, median (s)", (o) => notes.cell(o.app.median, 2)),
    row("old standby's own stop, median (s)", (o) => notes.cell(o.stop.median, 3)),
    row('overhead = deploy − app − stop, median / max (s)', (o) => notes.pair(o.overhead.median, o.overhead.max, 2), (o) => o.overhead.median),
  ];
  const extra: string[] = [];
  if (ours) {
    const l = ours.limit;
    rows.push([
      'one poll interval + one reload (s)',
      `${notes.cell(l.healthInterval, 2)} + ${notes.cell(l.reloadUnderLoad.median, 3)} = ${notes.cell(l.total, 2)}`,
      '',
      '',
    ]);
    rows.push(['our median overhead ÷ (poll interval + reload)', notes.ratioCell(ratio(ours.overhead.overhead.median, l.total)), '', '']);
    extra.push(
      `Nginx reload: sent until no old worker accepts connections; median of ${l.reloadUnderLoad.each.length} under the same load ` +
        `(${notes.cell(l.reloadUnderLoad.median, 3, ' s')}), of ${l.reloadIdle.each.length} idle (${notes.cell(l.reloadIdle.median, 3, ' s')}).`,
    );
    extra.push('Where our time goes, by phase: section 5.');
    extra.push(`Our overhead per deploy (s): ${ours.overhead.overhead.each.map((f) => notes.cell(f, 2)).join(' ')}`);
  }
  if (orig) extra.push(`Original overhead per deploy (s): ${orig.overhead.overhead.each.map((f) => notes.cell(f, 2)).join(' ')}`);
  extra.push(
    "The app's own start-to-ready: ours, from its JVM's start (its Started line less its \"process running for\") to its " +
      '"ReadinessState changed to ACCEPTING_TRAFFIC" line; the original\'s, its "process running for". The old standby\'s own ' +
      'stop (ours): its "Stopping" to its "Stopped" line; the original\'s is not subtracted.',
  );
  return {
    title: "2. Deploy overhead (deploy time − the app's own start-to-ready − the old standby's own stop)",
    head: ['', 'ours', 'original', 'ours ÷ original'],
    rows,
    notes: [...extra, ...notes.lines()],
  };
}

/** "2000 ms", or "1750 to 2200 ms (each: ...)" when the DOWN times were spread. */
function downTimes(s: Settings): string {
  const d = s.readyDelays ?? [];
  if (d.length === 0 || d.every((x) => x === s.readyDelayMs)) return `${s.readyDelayMs} ms`;
  return `${Math.min(...d)} to ${Math.max(...d)} ms (each: ${d.join(' ')})`;
}

function notReadyTitle(r: BenchResult): string {
  return `DOWN for ${(r.settings.readyDelayMs / 1000).toFixed(1)} s after its port opens`;
}

function kindsTable(r: BenchResult): Table {
  const notes = new Footnotes();
  const title = `3. Two kinds of app: ready when its port opens, and ${notReadyTitle(r)}`;
  if (!measured(r.ours)) return { title, head: [''], rows: [], notes: [`not measured: ${r.ours.notMeasured}`] };
  const ready = r.ours;
  const down = measured(ready.notReady) ? ready.notReady : undefined;
  const row = (label: string, cell: (f: SeriesResult) => string): string[] => [label, cell(ready), down ? cell(down) : ''];
  const rows = [
    row('deploys under load', (f) => `${f.swaps.deploys} (${f.swaps.succeeded} exit 0)`),
    row('only the new version answered after its switch', (f) => `${f.swaps.newVersionServed} of ${f.swaps.deploys}`),
    row('failed after the standard resend', (f) => fmtCount(f.swaps.failed, f.swaps.requests)),
    row('raw keep-alive resets', (f) => String(f.swaps.rawResets)),
    row('p99 ms steady / within 2 s of a switch', (f) => notes.pair(f.swaps.latency.steady.p99, f.swaps.latency.switch.p99, 1)),
    row('deploy time, median / max (s)', (f) => notes.pair(f.overhead.wall.median, f.overhead.wall.max, 2)),
    row("app's own start-to-ready, median (s)", (f) => notes.cell(f.overhead.app.median, 2)),
    row("old standby's own stop, median (s)", (f) => notes.cell(f.overhead.stop.median, 3)),
    row('overhead, median / max (s)', (f) => notes.pair(f.overhead.overhead.median, f.overhead.overhead.max, 2)),
  ];
  const extra = down
    ? [
        `Overhead per deploy, ${notReadyTitle(r)} (s): ${down.overhead.overhead.each.map((f) => notes.cell(f, 2)).join(' ')}`,
        `DOWN after the port opens: ${downTimes(r.settings)}, spread so that readiness falls at every point between two health probes.`,
      ]
    : [`${notReadyTitle(r)}: not measured: ${(ready.notReady as NotMeasured).notMeasured}`];
  return {
    title,
    head: ['', 'ready when its port opens (section 1)', notReadyTitle(r)],
    rows,
    notes: [...extra, ...notes.lines()],
  };
}

function rollbackTable(r: BenchResult): Table {
  const notes = new Footnotes();
  const title = '4. Rollback to the warm standby (bluegreen rollback), under the same load';
  const rb = measured(r.ours) ? r.ours.rollback : r.ours;
  if (!measured(rb)) return { title, head: [''], rows: [], notes: [`not measured: ${rb.notMeasured}`] };
  const s = rb.swaps;
  return {
    title,
    head: ['', 'rollback'],
    rows: [
      ['rollbacks under load', `${s.deploys} (${s.succeeded} exit 0)`],
      ['only the version rolled back to answered after its switch', `${s.newVersionServed} of ${s.deploys}`],
      ['failed after the standard resend', fmtCount(s.failed, s.requests)],
      ['raw keep-alive resets', String(s.rawResets)],
      ['p99 ms steady / within 2 s of a switch', notes.pair(s.latency.steady.p99, s.latency.switch.p99, 1)],
      ['rollback time, median / max (s)', notes.pair(rb.wall.median, rb.wall.max, 2)],
    ],
    notes: [`Each rollback (s): ${rb.wall.each.map((w) => w.toFixed(2)).join(' ')}`, ...notes.lines()],
  };
}

function phasesTable(r: BenchResult, title = '5. Where the time goes, by phase (medians, s)'): Table {
  const notes = new Footnotes();
  if (!measured(r.ours)) return { title, head: [''], rows: [], notes: [`not measured: ${r.ours.notMeasured}`] };
  const ready = r.ours.phases;
  const down = measured(r.ours.notReady) ? r.ours.notReady.phases : undefined;
  const rb = measured(r.ours.rollback) ? r.ours.rollback.phases : undefined;
  const rollbackOf: Partial<Record<DeployPhaseName, RollbackPhaseName>> = { switch: 'switch', after: 'after' };
  const rows = (Object.keys(DEPLOY_PHASES) as DeployPhaseName[]).map((k) => [
    DEPLOY_PHASES[k],
    notes.cell(ready[k], 2),
    down ? notes.cell(down[k], 2) : '',
    rb && rollbackOf[k] ? notes.cell(rb[rollbackOf[k]], 2) : '',
  ]);
  rows.push([ROLLBACK_PHASES.beforeSwitch, '', '', rb ? notes.cell(rb.beforeSwitch, 2) : '']);
  const overhead = (f: SeriesResult): string => notes.pair(f.overhead.overhead.median, f.overhead.overhead.max, 2);
  rows.push([
    'overhead (deploys) or time (rollbacks), median / max',
    overhead(r.ours),
    measured(r.ours.notReady) ? overhead(r.ours.notReady) : '',
    measured(r.ours.rollback) ? notes.pair(r.ours.rollback.wall.median, r.ours.rollback.wall.max, 2) : '',
  ]);
  return {
    title,
    head: ['phase', 'ready when its port opens', notReadyTitle(r), 'rollback'],
    rows,
    notes: [
      "Each phase runs from one mark to the next on one clock: the engine's progress lines (its seconds since it started, " +
        'placed on the wall clock by when the bench read them, within about 10 ms) and the app\'s own log lines ' +
        '(their timestamps). A deploy\'s phases add up to its time, its overhead is all of them but the two apps\' own ' +
        'start and stop; the medians of the phases need not add up to the median overhead.',
      ...notes.lines(),
    ],
  };
}

function originalList(r: BenchResult): List | undefined {
  if (!measured(r.original)) return undefined;
  const o = r.original;
  const served = (d: TimedDeploy): string => {
    const detail = o.swaps.perSwap.find((p) => p.version === d.version);
    if (!detail) return 'set-up deploy, no load';
    const answers = Object.entries(detail.servedAfter)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ×${v}`)
      .join(', ');
    return `requests started after its switch were answered by: ${answers || 'none'}`;
  };
  return {
    title: '6. The original flow, deploy by deploy (bench/original/deploy2.sh + switch.sh)',
    items: [...(o.setup ? [o.setup] : []), ...o.deploys].map((d) => ({
      head:
        `${d.version}${d === o.setup ? ' (set-up)' : ''}: ${d.wallSeconds.toFixed(1)} s, exit ${d.code}; ` +
        `app's own start ${fmt(d.appSeconds, 2, ' s')}`,
      lines: [`the scripts: ${d.summary}`, served(d)],
    })),
    notes: [],
  };
}

function proxyTable(r: BenchResult): Table {
  if (!measured(r.proxy)) {
    return { title: '7. Proxy cost', head: [''], rows: [], notes: [`not measured: ${r.proxy.notMeasured}`] };
  }
  const notes = new Footnotes();
  const p = r.proxy;
  const s = p.settings;
  const label: Record<string, string> = {
    direct: 'direct to the app',
    ours: 'through our Nginx config',
    original: "through the original's config",
  };
  return {
    title: `7. Proxy cost (wrk -t${s.threads} -c${s.connections} -d${s.seconds}s GET /, median of ${s.rounds} round(s), the same app process)`,
    head: ['', 'req/s', '× direct', 'p50 ms', 'p99 ms', '× direct', 'errors'],
    rows: p.targets.map((t) => [
      label[t.name] ?? t.name,
      notes.cell(t.requestsPerSecond, 0),
      notes.ratioCell(p.toDirect[t.name]!.requestsPerSecond),
      notes.cell(t.p50Ms, 2),
      notes.cell(t.p99Ms, 2),
      notes.ratioCell(p.toDirect[t.name]!.p99),
      t.failure ? 'wrk failed' : `${t.errors} socket, ${t.non2xx3xx} non-2xx/3xx`,
    ]),
    notes: [`Our throughput ÷ the original's: ${notes.ratioCell(p.oursOverOriginal)}`, ...notes.lines()],
  };
}

const GOALS_TITLE = 'What ec2-bluegreen promises, judged on this run';

function goalsList(r: BenchResult): List {
  return {
    title: GOALS_TITLE,
    items: r.goals.map((g) => ({ head: `[${g.status}] ${g.goal}`, lines: [`measured: ${g.measured}`] })),
    notes: [],
  };
}

function goalsTable(r: BenchResult): Table {
  return { title: GOALS_TITLE, head: ['promise', 'measured', 'status'], rows: r.goals.map((g) => [g.goal, g.measured, g.status]), notes: [] };
}

function settingsLines(r: BenchResult): string[] {
  const s = r.settings;
  const l = s.load;
  return [
    `Run: ${s.mode}, ${r.machine.date}, ${r.seconds.toFixed(0)} s; 1-minute load ${r.machine.loadAtStart} at start, ${r.loadAtEnd} at the end`,
    `Machine: ${machineLine(r.machine)}`,
    `Settings: ${s.swaps} swaps (ours) and ${s.originalDeploys} deploy(s) (original) under load, after one set-up deploy each; ` +
      `sample app with a ${s.startDelayMs} ms start delay; ` +
      `then ${s.readySwaps} swaps of the same app DOWN for ${downTimes(s)} after its port opens, and ${s.rollbacks} rollbacks; ` +
      `health poll interval ${s.healthInterval}; ` +
      `warm-up requests before a switch ${s.warmupRequests}; ` +
      `load: ${l.keepAliveConnections} keep-alive + ${l.newConnectionWorkers} new-connection clients, think ${l.thinkMs} ms, ` +
      `every ${l.postEvery}rd request a POST, every ${l.slowRequestEvery}th a ${l.slowMs} ms slow request; ` +
      `${s.warmupMs} ms warm-up, ${s.gapMs} ms of steady load after each deploy`,
  ];
}

type Part = { kind: 'table'; t: Table } | { kind: 'list'; l: List };

function parts(r: BenchResult, goalsAs: 'list' | 'table'): Part[] {
  const list = originalList(r);
  return [
    { kind: 'table', t: swapsTable(r) },
    { kind: 'table', t: overheadTable(r) },
    { kind: 'table', t: kindsTable(r) },
    { kind: 'table', t: rollbackTable(r) },
    { kind: 'table', t: phasesTable(r) },
    ...(list ? [{ kind: 'list' as const, l: list }] : []),
    { kind: 'table', t: proxyTable(r) },
    goalsAs === 'list' ? { kind: 'list', l: goalsList(r) } : { kind: 'table', t: goalsTable(r) },
  ];
}

export function renderText(r: BenchResult): string {
  const body = parts(r, 'list').map((p) => (p.kind === 'table' ? textTable(p.t) : textList(p.l)));
  return [r.title, ...settingsLines(r), '', ...body.map((b) => `${b}\n`)].join('\n');
}

export function renderMarkdown(r: BenchResult): string {
  const body = parts(r, 'table').map((p) => (p.kind === 'table' ? markdownTable(p.t) : markdownList(p.l)));
  return [`# ${r.title}`, '', ...settingsLines(r).map((l) => `${l}  `), '', ...body.map((b) => `${b}\n`)].join('\n');
}

/** The short summary kept in docs/BENCHMARKS.md: the goals and the headline figures. */
export function renderSummary(r: BenchResult, resultPath: string): string {
  const notes = new Footnotes();
  const ours = measured(r.ours) ? r.ours : undefined;
  const orig = measured(r.original) ? r.original : undefined;
  const row = (label: string, cell: (f: FlowResult) => string, ourCell?: (o: OurResult) => string): string[] => [
    label,
    ours ? (ourCell ?? cell)(ours) : '',
    orig ? cell(orig) : '',
  ];
  const rows = [
    row('deploys under load', (f) => String(f.swaps.deploys)),
    row('failed requests after the standard resend', (f) => fmtCount(f.swaps.failed, f.swaps.requests)),
    row('raw keep-alive resets', (f) => String(f.swaps.rawResets)),
    row('deploy time, median (s)', (f) => notes.cell(f.overhead.wall.median, 2)),
    row('deploy overhead, median (s)', (f) => notes.cell(f.overhead.overhead.median, 2)),
    row(
      `deploy overhead, median / max (s), app ${notReadyTitle(r)}`,
      () => '',
      (o) => (measured(o.notReady) ? notes.pair(o.notReady.overhead.overhead.median, o.notReady.overhead.overhead.max, 2) : notes.cell(o.notReady)),
    ),
    row(
      'rollback to the warm standby, median / max (s)',
      () => '',
      (o) => (measured(o.rollback) ? notes.pair(o.rollback.wall.median, o.rollback.wall.max, 2) : notes.cell(o.rollback)),
    ),
    row('p99 steady / within 2 s of a switch (ms)', (f) => notes.pair(f.swaps.latency.steady.p99, f.swaps.latency.switch.p99, 1)),
  ];
  if (measured(r.proxy)) {
    const t = new Map(r.proxy.targets.map((x) => [x.name, x]));
    const rps = (name: string): string => notes.cell(t.get(name)?.requestsPerSecond ?? notMeasured('not run'), 0);
    rows.push([`proxy throughput, req/s (direct to the app: ${rps('direct')})`, rps('ours'), rps('original')]);
  }
  const figures: Table = { title: 'Headline figures', head: ['', 'ours', 'original'], rows, notes: notes.lines() };
  return [
    `Last recorded run: ${r.settings.mode}, ${r.machine.date}, ${r.seconds.toFixed(0)} s. Machine: ${machineLine(r.machine)}. ` +
      `Full result: [${resultPath}](${resultPath}).`,
    '',
    markdownTable(goalsTable(r)),
    '',
    markdownTable(figures),
    '',
    markdownTable(phasesTable(r, 'Where the time goes, by phase (medians, s)')),
  ].join('\n');
}

/** Replaces the block between the summary markers in `doc` (or appends one). */
export function withSummary(doc: string, summary: string): string {
  const start = '<!-- bench:summary:start -->';
  const end = '<!-- bench:summary:end -->';
  const block = `${start}\n${summary}\n${end}`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  if (i >= 0 && j > i) return `${doc.slice(0, i)}${block}${doc.slice(j + end.length)}`;
  return `${doc.trimEnd()}\n\n## Latest run\n\n${block}\n`;
}
