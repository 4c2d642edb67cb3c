import { describe, expect, it } from 'vitest';
import { renderRateChart } from '../scripts/lib/chart.js';
import { firstAnsweredBy, latencyPerBucket, type LoadReport, type RateSeries, type Sample } from '../scripts/lib/load.js';

const series: RateSeries = {
  bucketMs: 1000,
  versions: ['v1', 'v2'],
  buckets: [
    { startMs: 0, perSecond: { v1: 100, v2: 0 }, failedPerSecond: 0 },
    { startMs: 1000, perSecond: { v1: 40, v2: 60 }, failedPerSecond: 0 },
    { startMs: 2000, perSecond: { v1: 0, v2: 100 }, failedPerSecond: 0 },
  ],
};

describe('renderRateChart', () => {
  it('draws one line per version, a legend and the marks, as well-formed SVG', () => {
    const svg = renderRateChart(series, [{ t: 1200, label: 'deploy <v2>' }], { title: 'Run & swap' });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<polyline /g)).toHaveLength(2);
    expect(svg).toContain('>v1</text>');
    expect(svg).toContain('>v2</text>');
    expect(svg).toContain('deploy &#60;v2&#62;');
    expect(svg).toContain('Run &#38; swap');
    expect(svg).not.toContain('NaN');
  });

  it('adds a failures line only when requests failed', () => {
    const failing: RateSeries = { ...series, buckets: series.buckets.map((b, i) => ({ ...b, failedPerSecond: i === 1 ? 7 : 0 })) };
    expect(renderRateChart(series, [], { title: 't' })).not.toContain('>failed</text>');
    const svg = renderRateChart(failing, [], { title: 't' });
    expect(svg).toContain('>failed</text>');
    expect(svg.match(/<polyline /g)).toHaveLength(3);
  });

  it('handles a run with no requests', () => {
    const svg = renderRateChart({ bucketMs: 250, versions: [], buckets: [{ startMs: 0, perSecond: {}, failedPerSecond: 0 }] }, [], { title: 'empty' });
    expect(svg).not.toContain('NaN');
    expect(svg).not.toContain('<polyline');
  });
});

describe('renderRateChart with latency and a caption', () => {
  const latency = [
    { startMs: 0, p50: 3, p99: 20 },
    { startMs: 1000, p50: Number.NaN, p99: Number.NaN },
    { startMs: 2000, p50: 9, p99: 180 },
  ];

  it('draws the switch as a solid line through both panels, the p50 and p99 lines with a gap where nothing completed, and the caption', () => {
    const svg = renderRateChart(series, [{ t: 1200, label: 'deploy v2: traffic to v2' }], {
      title: 't',
      latency,
      caption: ['the dip is latency, not loss', 'No request failed in this run.'],
    });
    expect(svg).toContain('deploy v2: traffic to v2');
    expect(svg).not.toContain('stroke-dasharray');
    const switchLine = /<line x1="([\d.]+)" x2="\1" y1="40" y2="([\d.]+)" stroke="#444"/.exec(svg);
    expect(switchLine, 'a vertical line at the mark').not.toBeNull();
    // Below the rate panel (height 360): it runs through the latency panel too.
    expect(Number(switchLine![2])).toBeGreaterThan(360);
    expect(svg).toContain('latency of answered requests (ms)');
    expect(svg).toContain('>p50</text>');
    expect(svg).toContain('>p99</text>');
    // Two rate lines, and p50 and p99 each split in two by the empty bucket.
    expect(svg.match(/<polyline /g)).toHaveLength(2 + 4);
    expect(svg).toContain('>the dip is latency, not loss</text>');
    expect(svg).toContain('>No request failed in this run.</text>');
    expect(svg).toMatch(/height="(\d+)"/);
    expect(Number(/ height="(\d+)"/.exec(svg)![1])).toBeGreaterThan(360 + 170);
    expect(svg).not.toContain('NaN');
  });
});

describe('renderRateChart marks near the right edge', () => {
  it('writes a label that would run into the legend to the left of its line', () => {
    const label = 'rollback to v1: traffic to v1 (0.18 s after the command)';
    const svg = renderRateChart(series, [{ t: 2600, label }], { title: 't' });
    const line = /<line x1="([\d.]+)" x2="\1" y1="40"/.exec(svg)!;
    const text = new RegExp(`<text x="([\\d.]+)" text-anchor="end" y="\\d+" fill="#444">${label.replace(/[()]/g, '\\$&')}</text>`).exec(svg);
    expect(text, svg).not.toBeNull();
    expect(Number(text![1])).toBeLessThan(Number(line[1]));
    const early = renderRateChart(series, [{ t: 100, label }], { title: 't' });
    expect(early).not.toContain('text-anchor="end" y=');
  });
});

function sample(start: number, end: number, version: string | undefined, extra: Partial<Sample> = {}): Sample {
  return { start, end, kind: 'get', conn: 'keepalive', ok: true, status: 200, version, rawReset: false, resent: false, ...extra };
}

function report(samples: Sample[]): LoadReport {
  return { durationMs: 3000, samples } as unknown as LoadReport;
}

describe('what the demo marks and measures', () => {
  const run = report([
    sample(100, 110, 'v1'),
    sample(1500, 1510, 'v1'),
    sample(1700, 1900, 'v2', { ok: false, status: 502 }),
    sample(1800, 1830, 'v2'),
    sample(1750, 2100, 'v2', { kind: 'slow' }),
    sample(2500, 2520, 'v2'),
  ]);

  it('puts the switch at the first answered request of the new version after the command began', () => {
    expect(firstAnsweredBy(run, 'v2', 1000)).toBe(1750);
    expect(firstAnsweredBy(run, 'v1', 1000)).toBe(1500);
    expect(firstAnsweredBy(run, 'v3', 0)).toBeUndefined();
  });

  it('gives p50 and p99 of answered, not deliberately slow, requests per bucket, NaN where none completed', () => {
    const buckets = latencyPerBucket(run, 1000);
    expect(buckets.map((b) => b.startMs)).toEqual([0, 1000, 2000]);
    expect(buckets[0]).toEqual({ startMs: 0, p50: 10, p99: 10 });
    // 1510 (v1, 10 ms) and 1830 (v2, 30 ms); the failed one and the slow one do not count.
    expect(buckets[1]).toEqual({ startMs: 1000, p50: 10, p99: 30 });
    expect(buckets[2]).toEqual({ startMs: 2000, p50: 20, p99: 20 });
    expect(Number.isNaN(latencyPerBucket(report([sample(0, 5, 'v1')]), 1000)[2]!.p50)).toBe(true);
  });
});
