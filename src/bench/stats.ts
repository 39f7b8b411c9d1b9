// Turns what a driver measured into a result row.
import type { BenchRow, TrialParams, TrialResult } from './types.js';

/** Nearest-rank percentile of sorted values (p in 0..1). */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length)));
  return sorted[rank - 1];
}

function median(sorted: Float64Array): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  return n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

export function summarize(params: TrialParams, result: TrialResult): BenchRow {
  if (result.rttNs.length !== params.count) {
    throw new Error(`${params.transport}: driver returned ${result.rttNs.length} round trips, expected ${params.count}`);
  }
  const sorted = Float64Array.from(result.rttNs).sort();
  const msgsPerSec = params.onewayCount / (result.onewayNs / 1e9);
  return {
    transport: params.transport,
    size: params.size,
    rttMedianUs: round(median(sorted) / 1000, 3),
    rttP99Us: round(percentile(sorted, 0.99) / 1000, 3),
    msgsPerSec: Math.round(msgsPerSec),
    mbPerSec: Number(((msgsPerSec * params.size) / 1e6).toPrecision(4)),
  };
}

/** One row from several trials of the same transport and size: the median of each figure. */
export function combineTrials(trials: readonly BenchRow[]): BenchRow {
  if (trials.length === 0) throw new Error('combineTrials: no trials');
  const mid = (pick: (r: BenchRow) => number) => median(Float64Array.from(trials, pick).sort());
  const { transport, size } = trials[0];
  return {
    transport,
    size,
    rttMedianUs: round(mid((r) => r.rttMedianUs), 3),
    rttP99Us: round(mid((r) => r.rttP99Us), 3),
    msgsPerSec: Math.round(mid((r) => r.msgsPerSec)),
    mbPerSec: Number(mid((r) => r.mbPerSec).toPrecision(4)),
  };
}
