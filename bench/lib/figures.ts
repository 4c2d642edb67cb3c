/**
 * Figures the benchmark reports: a number that was measured in this run, or the reason it could
 * not be. Nothing here makes a number up: an empty input gives a `NotMeasured`, never 0 or NaN.
 */

/** Why a figure has no value in this run. */
export interface NotMeasured {
  readonly notMeasured: string;
}

/** A measured number, or why there is none. */
export type Figure = number | NotMeasured;

export function notMeasured(why: string): NotMeasured {
  return { notMeasured: why };
}

export function isMeasured(f: Figure): f is number {
  return typeof f === 'number' && Number.isFinite(f);
}

/** The nearest-rank p-th percentile (0-100) of `values`, or why there is none. */
export function percentileOf(values: readonly number[], p: number, what: string): Figure {
  if (values.length === 0) return notMeasured(`no ${what}`);
  const sorted = Float64Array.from(values).sort();
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

export function medianOf(values: readonly number[], what: string): Figure {
  return percentileOf(values, 50, what);
}

export function maxOf(values: readonly number[], what: string): Figure {
  return percentileOf(values, 100, what);
}

/** The measured values among `figures` (the not-measured ones are left out). */
export function measuredValues(figures: readonly Figure[]): number[] {
  return figures.filter(isMeasured);
}

/** a / b, or why there is no ratio. */
export function ratio(a: Figure, b: Figure): Figure {
  if (!isMeasured(a)) return a;
  if (!isMeasured(b)) return b;
  if (b === 0) return notMeasured('the reference is 0');
  return a / b;
}

export function sum(a: Figure, b: Figure): Figure {
  if (!isMeasured(a)) return a;
  if (!isMeasured(b)) return b;
  return a + b;
}

/** Formats a figure with `digits` decimals and an optional unit; "not measured: why" otherwise. */
export function fmt(f: Figure, digits = 2, unit = ''): string {
  if (!isMeasured(f)) return `not measured: ${f.notMeasured}`;
  return `${f.toFixed(digits)}${unit}`;
}

/** A ratio as "0.31×". */
export function fmtRatio(f: Figure): string {
  if (!isMeasured(f)) return `n/a (${f.notMeasured})`;
  return `${f < 0.1 && f > 0 ? f.toPrecision(2) : f.toFixed(2)}×`;
}

/** A count and its share of a total: "12 (0.4 %)". */
export function fmtCount(count: number, total: number): string {
  if (total === 0) return String(count);
  const share = (100 * count) / total;
  const digits = share === 0 || share >= 10 ? 0 : share >= 1 ? 1 : 2;
  return `${count} (${share.toFixed(digits)} %)`;
}
