import { describe, expect, it } from 'vitest';
import { renderRateChart } from '../scripts/lib/chart.js';
import type { RateSeries } from '../scripts/lib/load.js';

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
