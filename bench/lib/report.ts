/**
 * The suite's report for people: a Markdown table (readable in a terminal, pasteable into
 * RESULTS.md) with one row per figure, its median and every run's value.
 */
import { median, type SuiteReport, type WorkloadReport } from '../suite.js';

function formatNumber(value: number | null | undefined, digits: number): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function workloadRows(workload: WorkloadReport): string[] {
  const rows: string[] = [];
  workload.figures.forEach((figure, index) => {
    const runs = workload.runs
      .map((r) => (r.figures === null ? 'failed' : formatNumber(r.figures[figure.key], figure.digits)))
      .join(' · ');
    const name = index === 0 ? `**${workload.id}** ${workload.title}` : '';
    const median = formatNumber(workload.median[figure.key], figure.digits);
    rows.push(`| ${name} | ${figure.label} | ${median} | ${figure.unit} | ${runs} |`);
  });
  const loads = workload.runs.map((r) => r.loadAtStart);
  const loadRuns = loads.map((l) => formatNumber(l, 1)).join(' · ');
  rows.push(`|  | machine load at start (1-min avg) | ${formatNumber(median(loads), 1)} |  | ${loadRuns} |`);
  return rows;
}

export function renderReport(report: SuiteReport): string {
  const m = report.machine;
  const lines = [
    `Flotilla benchmark suite — ${report.date}, commit ${report.commit}`,
    `${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, ${m.os}, load ${m.loadAverage1m} at start`,
    `3 nodes on loopback, one queue, ${report.payloadBytes}-byte random payloads, ${report.durability}; ` +
      `medians of ${report.runs} run(s), a fresh cluster per run`,
    ...(report.serverArgs.length > 0 ? [`server flags: ${report.serverArgs.join(' ')}`] : []),
    '',
    '| workload | figure | median | unit | runs |',
    '| --- | --- | ---: | --- | --- |',
    ...report.workloads.flatMap(workloadRows),
  ];
  const failures = report.workloads.flatMap((w) =>
    w.runs.filter((r) => r.error !== null).map((r) => `${w.id} run ${r.run}: ${r.error?.split('\n')[0]}`),
  );
  if (failures.length > 0) lines.push('', 'Failed runs:', ...failures.map((f) => `- ${f}`));
  return lines.join('\n');
}
