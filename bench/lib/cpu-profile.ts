/**
 * Reading V8 CPU profiles (`node --cpu-prof`): self time per function and per code area within a
 * span of the monotonic clock, with idle time apart, rendered as Markdown tables.
 */

export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

export interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  selfUs: number;
}

export interface ProfileSummary {
  windowUs: number;
  idleUs: number;
  busyUs: number;
  functions: SelfTime[];
  areas: SelfTime[];
}

/** The code area a frame belongs to: a package, a Flotilla module, Node's internals, or the VM. */
export function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') return functionName.startsWith('(') ? functionName : `native ${functionName}`;
  const dependency = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (dependency) return dependency[1]!;
  const flotilla = /\/packages\/([^/]+)\/(?:dist|src)\/([^/]+)/.exec(url);
  if (flotilla) return `flotilla ${flotilla[1]}/${flotilla[2]!.replace(/\.js$/, '')}`;
  if (url.startsWith('node:')) return `node ${url.slice(5).split('/').slice(0, 2).join('/')}`;
  return url;
}

function shortLocation(frame: CallFrame): string {
  const url = frame.url.replace(/^.*\/(node_modules|packages)\//, '').replace(/^file:\/\//, '');
  return url === '' ? '' : `${url}:${frame.lineNumber + 1}`;
}

function addTo(map: Map<string, number>, key: string, us: number): void {
  map.set(key, (map.get(key) ?? 0) + us);
}

function sorted(map: Map<string, number>): SelfTime[] {
  return [...map.entries()].map(([name, selfUs]) => ({ name, selfUs })).sort((a, b) => b.selfUs - a.selfUs);
}

/** Self time per function and per area within `[fromUs, toUs]` (the profile's clock), idle apart. */
export function summarize(profile: CpuProfile, fromUs = -Infinity, toUs = Infinity): ProfileSummary {
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const functions = new Map<string, number>();
  const areas = new Map<string, number>();
  let at = profile.startTime;
  let idleUs = 0;
  let windowUs = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at < fromUs || at > toUs) return;
    windowUs += delta;
    const frame = frames.get(id);
    if (!frame || frame.functionName === '(idle)') {
      idleUs += delta;
      return;
    }
    const location = shortLocation(frame);
    addTo(functions, `${frame.functionName || '(anonymous)'}${location ? ` ${location}` : ''}`, delta);
    addTo(areas, areaOf(frame), delta);
  });
  return { windowUs, idleUs, busyUs: windowUs - idleUs, functions: sorted(functions), areas: sorted(areas) };
}

function percent(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : '—';
}

export function renderSummary(title: string, summary: ProfileSummary, top: number): string {
  const ms = (us: number) => (us / 1000).toFixed(0);
  const lines = [
    `### ${title}`,
    `busy ${ms(summary.busyUs)} ms of ${ms(summary.windowUs)} ms (${percent(summary.busyUs, summary.windowUs)})`,
    '',
    '| self % of busy | self ms | function |',
    '| ---: | ---: | --- |',
    ...summary.functions
      .slice(0, top)
      .map((f) => `| ${percent(f.selfUs, summary.busyUs)} | ${ms(f.selfUs)} | \`${f.name}\` |`),
    '',
    '| self % of busy | area |',
    '| ---: | --- |',
    ...summary.areas.slice(0, top).map((a) => `| ${percent(a.selfUs, summary.busyUs)} | ${a.name} |`),
  ];
  return lines.join('\n');
}
