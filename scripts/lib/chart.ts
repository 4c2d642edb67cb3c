/**
 * A dependency-free SVG chart of requests per second by version over time, with the moments
 * traffic switched marked, and (when given) the latency underneath on the same time axis: what
 * the demo shows a person after a run.
 */
import type { LatencyBucket, RateSeries } from './load.js';

export interface ChartMark {
  /** ms since the run start: when traffic moved (see `firstAnsweredBy`), not when a command began. */
  readonly t: number;
  readonly label: string;
}

export interface ChartOptions {
  readonly title: string;
  /** @default 900 */
  readonly width?: number;
  /** Height of the requests-per-second panel. @default 360 */
  readonly height?: number;
  /**
   * p50 and p99 latency per bucket (the rate series' buckets), drawn as a second panel below.
   * @default no latency panel
   */
  readonly latency?: readonly LatencyBucket[];
  /**
   * Lines printed under the chart, e.g. what a dip in the rate means.
   * @default none
   */
  readonly caption?: readonly string[];
}

const LATENCY_PANEL_HEIGHT = 170;
const CAPTION_LINE_HEIGHT = 17;
const SWITCH_COLOUR = '#444';
/** Average width of a character at font-size 12 in a sans-serif font, in px: enough to place labels. */
const APPROX_CHAR_WIDTH = 6.5;
const P50_COLOUR = '#6e7781';
const P99_COLOUR = '#bf8700';

const PALETTE = ['#1f6feb', '#2da44e', '#bf8700', '#8250df', '#cf222e', '#0a7ea4'];
const FAILED_COLOUR = '#cf222e';

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * A line per version (and one for failures when there were any), a vertical line at each mark,
 * the latency panel and the caption when given.
 */
export function renderRateChart(series: RateSeries, marks: readonly ChartMark[], opts: ChartOptions): string {
  const width = opts.width ?? 900;
  const height = opts.height ?? 360;
  const latencyHeight = opts.latency === undefined ? 0 : LATENCY_PANEL_HEIGHT;
  const caption = opts.caption ?? [];
  const totalHeight = height + latencyHeight + (caption.length ? caption.length * CAPTION_LINE_HEIGHT + 10 : 0);
  const pad = { left: 60, right: 130, top: 40, bottom: 40 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const spanMs = Math.max(series.buckets.length * series.bucketMs, 1);
  const anyFailed = series.buckets.some((b) => b.failedPerSecond > 0);
  let maxRate = 1;
  for (const b of series.buckets) {
    for (const v of series.versions) maxRate = Math.max(maxRate, b.perSecond[v] ?? 0);
    maxRate = Math.max(maxRate, b.failedPerSecond);
  }
  const niceMax = niceCeiling(maxRate);
  const x = (ms: number) => pad.left + (ms / spanMs) * plotW;
  const y = (rate: number) => pad.top + plotH - (rate / niceMax) * plotH;

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${totalHeight}" viewBox="0 0 ${width} ${totalHeight}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${pad.left}" y="22" font-size="15" font-weight="bold">${escapeXml(opts.title)}</text>`,
  );
  for (let i = 0; i <= 4; i++) {
    const rate = (niceMax * i) / 4;
    parts.push(
      `<line x1="${pad.left}" x2="${pad.left + plotW}" y1="${y(rate).toFixed(1)}" y2="${y(rate).toFixed(1)}" stroke="#e5e5e5"/>`,
      `<text x="${pad.left - 6}" y="${(y(rate) + 4).toFixed(1)}" text-anchor="end">${Math.round(rate)}</text>`,
    );
  }
  const seconds = spanMs / 1000;
  const step = seconds > 60 ? 10 : seconds > 20 ? 5 : 1;
  for (let s = 0; s <= seconds; s += step) {
    parts.push(`<text x="${x(s * 1000).toFixed(1)}" y="${height - pad.bottom + 16}" text-anchor="middle">${s}s</text>`);
  }
  parts.push(`<text x="14" y="${pad.top + plotH / 2}" transform="rotate(-90 14 ${pad.top + plotH / 2})" text-anchor="middle">requests/s</text>`);
  const markBottom = pad.top + plotH + (latencyHeight ? latencyHeight : 0);
  for (const [i, m] of marks.entries()) {
    const mx = x(m.t).toFixed(1);
    // A label that would run past the plot (into the legend) is written to the left of its line.
    const fitsRight = x(m.t) + 3 + m.label.length * APPROX_CHAR_WIDTH <= pad.left + plotW;
    const label = fitsRight
      ? `<text x="${(x(m.t) + 3).toFixed(1)}"`
      : `<text x="${(x(m.t) - 3).toFixed(1)}" text-anchor="end"`;
    parts.push(
      `<line x1="${mx}" x2="${mx}" y1="${pad.top}" y2="${markBottom}" stroke="${SWITCH_COLOUR}" stroke-width="1.5"/>`,
      `${label} y="${pad.top + 12 + (i % 2) * 14}" fill="${SWITCH_COLOUR}">${escapeXml(m.label)}</text>`,
    );
  }
  const lines: Array<{ name: string; colour: string; values: number[] }> = series.versions.map((v, i) => ({
    name: v,
    colour: PALETTE[i % PALETTE.length]!,
    values: series.buckets.map((b) => b.perSecond[v] ?? 0),
  }));
  if (anyFailed) lines.push({ name: 'failed', colour: FAILED_COLOUR, values: series.buckets.map((b) => b.failedPerSecond) });
  lines.forEach((line, i) => {
    const points = line.values
      .map((rate, j) => `${x((j + 0.5) * series.bucketMs).toFixed(1)},${y(rate).toFixed(1)}`)
      .join(' ');
    parts.push(`<polyline fill="none" stroke="${line.colour}" stroke-width="2" points="${points}"/>`);
    const ly = pad.top + 14 + i * 18;
    parts.push(
      `<line x1="${width - pad.right + 12}" x2="${width - pad.right + 32}" y1="${ly - 4}" y2="${ly - 4}" stroke="${line.colour}" stroke-width="3"/>`,
      `<text x="${width - pad.right + 38}" y="${ly}">${escapeXml(line.name)}</text>`,
    );
  });
  if (opts.latency !== undefined) parts.push(...latencyPanel(opts.latency, { top: height + 20, left: pad.left, width: plotW, height: latencyHeight - 40, legendX: width - pad.right + 12 }, x, series.bucketMs));
  caption.forEach((line, i) => {
    parts.push(`<text x="${pad.left}" y="${height + latencyHeight + 14 + i * CAPTION_LINE_HEIGHT}" fill="#333">${escapeXml(line)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

interface PanelBox {
  readonly top: number;
  readonly left: number;
  readonly width: number;
  readonly height: number;
  readonly legendX: number;
}

/** p50 and p99 lines on a shared ms axis below the rate panel; buckets without requests leave a gap. */
function latencyPanel(buckets: readonly LatencyBucket[], box: PanelBox, x: (ms: number) => number, bucketMs: number): string[] {
  let maxMs = 1;
  for (const b of buckets) for (const v of [b.p50, b.p99]) if (Number.isFinite(v)) maxMs = Math.max(maxMs, v);
  const niceMax = niceCeiling(maxMs);
  const y = (ms: number) => box.top + box.height - (ms / niceMax) * box.height;
  const parts = [`<text x="${box.left}" y="${box.top - 4}" font-weight="bold">latency of answered requests (ms)</text>`];
  for (let i = 0; i <= 2; i++) {
    const ms = (niceMax * i) / 2;
    parts.push(
      `<line x1="${box.left}" x2="${box.left + box.width}" y1="${y(ms).toFixed(1)}" y2="${y(ms).toFixed(1)}" stroke="#e5e5e5"/>`,
      `<text x="${box.left - 6}" y="${(y(ms) + 4).toFixed(1)}" text-anchor="end">${Math.round(ms)}</text>`,
    );
  }
  const lines = [
    { name: 'p99', colour: P99_COLOUR, pick: (b: LatencyBucket) => b.p99 },
    { name: 'p50', colour: P50_COLOUR, pick: (b: LatencyBucket) => b.p50 },
  ];
  lines.forEach((line, i) => {
    // One polyline per run of buckets that had requests, so an empty bucket is a gap, not a zero.
    let run: string[] = [];
    const flush = () => {
      if (run.length) parts.push(`<polyline fill="none" stroke="${line.colour}" stroke-width="1.5" points="${run.join(' ')}"/>`);
      run = [];
    };
    buckets.forEach((b, j) => {
      const v = line.pick(b);
      if (Number.isFinite(v)) run.push(`${x((j + 0.5) * bucketMs).toFixed(1)},${y(v).toFixed(1)}`);
      else flush();
    });
    flush();
    const ly = box.top + 14 + i * 18;
    parts.push(
      `<line x1="${box.legendX}" x2="${box.legendX + 20}" y1="${ly - 4}" y2="${ly - 4}" stroke="${line.colour}" stroke-width="3"/>`,
      `<text x="${box.legendX + 26}" y="${ly}">${line.name}</text>`,
    );
  });
  return parts;
}

function niceCeiling(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * magnitude >= value) return f * magnitude;
  return 10 * magnitude;
}
