/**
 * The benchmark's result: what ec2-bluegreen promises, judged against the run's figures, and the same
 * tables as plain text (terminal), Markdown (bench/results/, docs/BENCHMARKS.md) and JSON.
 */
import { fmt, fmtCount, fmtRatio, isMeasured, notMeasured, ratio, type Figure, type NotMeasured } from './figures.js';
import type { LatencyFigures, OverheadFigures, SwapFigures, TimedDeploy } from './harness.js';
import { machineLine, type Machine } from './machine.js';
import type { ReloadMeasurement } from './ours.js';
import type { ProxyFigures } from './proxy.js';

export interface FlowResult {
  readonly setup: TimedDeploy | null;
  readonly swaps: SwapFigures;
  readonly overhead: OverheadFigures;
  readonly deploys: TimedDeploy[];
}

export interface OurResult extends FlowResult {
  /** Medians of where our overhead goes, from the engine's progress lines (seconds). */
  readonly phases: {
    readonly prepare: Figure;
    readonly bootBeyondApp: Figure;
    readonly switch: Figure;
    readonly afterSwitch: Figure;
  };
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
} as const;

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
    const clean = s.failed === 0 && failedDeploys === 0;
    goals.push({
      goal: GOALS.noFailures,
      measured:
        `${s.failed} failed of ${s.requests} (new-connection ${s.failedNewConnection}, keep-alive after resend ${s.failedKeepAlive}); ` +
        `raw resets ${s.rawResets}, per swap: ${s.resetsPerSwap.each.join(' ')}` +
        (failedDeploys ? `; ${failedDeploys} deploy(s) failed` : '') +
        (s.deploys < 20 ? `; only ${s.deploys} swaps (the promise is judged over at least 20: run without --quick)` : ''),
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
  return goals;
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
    row("app's own start-to-healthy, median (s)", (o) => notes.cell(o.app.median, 2)),
    row('overhead = deploy − app, median / max (s)', (o) => notes.pair(o.overhead.median, o.overhead.max, 2), (o) => o.overhead.median),
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
    const p = ours.phases;
    extra.push(
      `Where our time beyond the app goes (medians, from the engine's progress lines): before the start (lock, checks, release, ` +
        `drain, stop the old standby) ${notes.cell(p.prepare, 2, ' s')}; start-to-healthy beyond the app's own (exec, poll ` +
        `granularity) ${notes.cell(p.bootBeyondApp, 2, ' s')}; switch (nginx -t, reload, proof through Nginx) ` +
        `${notes.cell(p.switch, 2, ' s')}; after the switch ${notes.cell(p.afterSwitch, 2, ' s')}.`,
    );
    extra.push(`Our overhead per deploy (s): ${ours.overhead.overhead.each.map((f) => notes.cell(f, 2)).join(' ')}`);
  }
  if (orig) extra.push(`Original overhead per deploy (s): ${orig.overhead.overhead.each.map((f) => notes.cell(f, 2)).join(' ')}`);
  return {
    title: "2. Deploy overhead (deploy time − the app's own \"process running for\")",
    head: ['', 'ours', 'original', 'ours ÷ original'],
    rows,
    notes: [...extra, ...notes.lines()],
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
    title: '3. The original flow, deploy by deploy (bench/original/deploy2.sh + switch.sh)',
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
    return { title: '4. Proxy cost', head: [''], rows: [], notes: [`not measured: ${r.proxy.notMeasured}`] };
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
    title: `4. Proxy cost (wrk -t${s.threads} -c${s.connections} -d${s.seconds}s GET /, median of ${s.rounds} round(s), the same app process)`,
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
      `sample app with a ${s.startDelayMs} ms start delay; health poll interval ${s.healthInterval}; ` +
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
