/**
 * Latency recording for the benchmark workloads: an HDR histogram in microseconds (so sub-ms
 * confirms keep their resolution) summarised in milliseconds.
 */
import * as hdr from 'hdr-histogram-js';

/** Percentiles of one latency distribution, all in milliseconds. */
export interface LatencySummaryMs {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** Highest value the histogram tracks: 10 minutes in microseconds (a confirm later than that is a hang). */
const HIGHEST_TRACKABLE_US = 600_000_000;

export class LatencyRecorder {
  private readonly histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_TRACKABLE_US,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });

  /** Records one sample given in milliseconds (fractions kept to the microsecond). */
  recordMs(latencyMs: number): void {
    const us = Math.round(latencyMs * 1000);
    this.histogram.recordValue(Math.min(HIGHEST_TRACKABLE_US, Math.max(1, us)));
  }

  get count(): number {
    return this.histogram.totalCount;
  }

  summary(): LatencySummaryMs {
    const h = this.histogram;
    const ms = (us: number) => Math.round(us) / 1000;
    return {
      count: h.totalCount,
      p50: ms(h.getValueAtPercentile(50)),
      p90: ms(h.getValueAtPercentile(90)),
      p99: ms(h.getValueAtPercentile(99)),
      p999: ms(h.getValueAtPercentile(99.9)),
      max: ms(h.maxValue),
      mean: ms(h.mean),
    };
  }
}
