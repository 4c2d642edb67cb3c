/**
 * A dependency-free SVG chart of requests per second by version over time, with the swaps
 * marked: what the demo shows a person after a run.
 */
import type { RateSeries } from './load.js';

export interface ChartMark {
  /** ms since the run start. */
  readonly t: number;
  readonly label: string;
}

export interface ChartOptions {
  readonly title: string;
  /** @default 900 */
  readonly width?: number;
  /** @default 360 */
  readonly height?: number;
}

const PALETTE = ['#1f6feb', '#2da44e', '#bf8700', '#8250df', '#cf222e', '#0a7ea4'];
const FAILED_COLOUR = '#cf222e';

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A line per version (and one for failures when there were any), vertical lines at the marks. */
export function renderRateChart(series: RateSeries, marks: readonly ChartMark[], opts: ChartOptions): string {
  const width = opts.width ?? 900;
  const height = opts.height ?? 360;
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
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
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
  for (const m of marks) {
    const mx = x(m.t).toFixed(1);
    parts.push(
      `<line x1="${mx}" x2="${mx}" y1="${pad.top}" y2="${pad.top + plotH}" stroke="#555" stroke-dasharray="4 3"/>`,
      `<text x="${(x(m.t) + 3).toFixed(1)}" y="${pad.top + 12}" fill="#555">${escapeXml(m.label)}</text>`,
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
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

function niceCeiling(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * magnitude >= value) return f * magnitude;
  return 10 * magnitude;
}
