/**
 * `flotilla status`: the cluster at a glance. Asks every configured node for `GET /api/cluster`
 * (its own role, term, commit and applied index, and the members it knows), and shows one row per
 * node with its lag behind the leader. When no node answers over HTTP (only the client port is
 * exposed, say) it falls back to the SDK's `cluster()`, which is one node's view.
 */

import type { ClusterInfo } from '@flotilla/client';
import type { Command } from 'commander';
import { addClientOptions, type ClientFlags, connectOptionsFromFlags, withClient } from '../client-flags.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { formatCount, renderTable, toJson } from '../format.js';
import type { CommandEnv } from '../program.js';

/** One member as `/api/cluster` lists it. */
export interface ApiMember {
  id: string;
  address: string;
  voter: boolean;
  matchIndex: number | null;
  connected: boolean;
}

/** A node's own view, as served by `GET /api/cluster`. */
export interface ApiClusterStatus {
  nodeId: string;
  role: string;
  term: number;
  leaderId: string | null;
  leaderAddress: string | null;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  snapshotIndex: number;
  members: ApiMember[];
}

/** What asking one configured URL gave. */
export type HttpAnswer = { url: string; status: ApiClusterStatus } | { url: string; error: string };

export interface NodeRow {
  id: string;
  /** The address we reached it at, or the one its peers know it by. */
  address: string | null;
  /** Answered this command (HTTP) / reachable from the answering node (client fallback). */
  reachable: boolean;
  role: string;
  term: number | null;
  commitIndex: number | null;
  appliedIndex: number | null;
  /** Entries behind the leader (commit index minus applied, or minus match index); null if unknown. */
  lag: number | null;
  error: string | null;
}

export interface StatusView {
  source: 'http' | 'client';
  leaderId: string | null;
  term: number | null;
  nodes: NodeRow[];
}

/** `ws://h:p/client` → `http://h:p/api/cluster`. */
export function apiClusterUrl(serverUrl: string): string {
  const url = new URL(serverUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  url.pathname = '/api/cluster';
  url.search = '';
  return url.toString();
}

function isApiStatus(value: unknown): value is ApiClusterStatus {
  const v = value as Partial<ApiClusterStatus> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.nodeId === 'string' &&
    typeof v.role === 'string' &&
    typeof v.term === 'number' &&
    typeof v.commitIndex === 'number' &&
    typeof v.appliedIndex === 'number'
  );
}

const HTTP_TIMEOUT_MS = 3000;

async function askNode(ctx: CliContext, serverUrl: string, token: string | undefined): Promise<HttpAnswer> {
  const url = apiClusterUrl(serverUrl);
  try {
    // With --auth-tokens on the server every /api/ call needs the bearer token.
    const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
    const response = await ctx.fetch(url, { headers, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    if (!response.ok) return { url, error: `HTTP ${response.status}` };
    const body: unknown = await response.json();
    if (!isApiStatus(body)) return { url, error: 'not a cluster status' };
    return { url, status: { ...body, members: Array.isArray(body.members) ? body.members : [] } };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { url, error: cause ?? (error as Error).message };
  }
}

/** The freshest opinion on who leads: the answer with the highest term that names a leader. */
function leaderOf(statuses: readonly ApiClusterStatus[]): { leaderId: string | null; term: number | null } {
  const best = [...statuses].sort((a, b) => b.term - a.term).find((s) => s.leaderId !== null);
  const term = statuses.reduce<number | null>((max, s) => Math.max(max ?? 0, s.term), null);
  return { leaderId: best?.leaderId ?? null, term };
}

/** Rows from the HTTP answers: answering nodes first-hand, the rest from the leader's member list. */
export function statusFromHttp(answers: readonly HttpAnswer[]): StatusView {
  const statuses = answers.flatMap((a) => ('status' in a ? [a.status] : []));
  const { leaderId, term } = leaderOf(statuses);
  const leader = statuses.find((s) => s.nodeId === leaderId && s.role === 'leader');
  const rows = new Map<string, NodeRow>();
  for (const answer of answers) {
    if (!('status' in answer)) continue;
    const s = answer.status;
    rows.set(s.nodeId, {
      id: s.nodeId,
      address: new URL(answer.url).host,
      reachable: true,
      role: s.role,
      term: s.term,
      commitIndex: s.commitIndex,
      appliedIndex: s.appliedIndex,
      lag: leader === undefined ? null : Math.max(0, leader.commitIndex - s.appliedIndex),
      error: null,
    });
  }
  const members = leader?.members ?? statuses.flatMap((s) => s.members);
  for (const member of members) {
    if (rows.has(member.id)) continue;
    rows.set(member.id, {
      id: member.id,
      address: member.address,
      reachable: false,
      role: member.voter ? 'voter' : 'learner',
      term: null,
      commitIndex: null,
      appliedIndex: null,
      lag:
        leader !== undefined && member.matchIndex !== null
          ? Math.max(0, leader.lastIndex - member.matchIndex)
          : null,
      error: member.connected ? 'no answer here' : 'not connected to the leader',
    });
  }
  const unidentified = answers.flatMap((a) => ('error' in a ? [a] : []));
  for (const answer of unidentified) {
    const host = new URL(answer.url).host;
    if ([...rows.values()].some((row) => row.address === host)) continue;
    rows.set(`?${host}`, { ...emptyRow('?', host), error: answer.error });
  }
  return {
    source: 'http',
    leaderId,
    term,
    // Known nodes by id; addresses that did not answer and match no member go last.
    nodes: [...rows.values()].sort(
      (a, b) => Number(a.id === '?') - Number(b.id === '?') || a.id.localeCompare(b.id),
    ),
  };
}

function emptyRow(id: string, address: string | null): NodeRow {
  const unknown = { term: null, commitIndex: null, appliedIndex: null, lag: null };
  return { id, address, reachable: false, role: 'unknown', ...unknown, error: null };
}

/** Rows from one node's view through the SDK (only that node's indexes are first-hand). */
export function statusFromClusterInfo(info: ClusterInfo): StatusView {
  const nodes = info.nodes.map((node): NodeRow => {
    const self = node.id === info.nodeId;
    const lag = self
      ? Math.max(0, info.commitIndex - info.appliedIndex)
      : node.matchIndex === null
        ? null
        : Math.max(0, info.commitIndex - node.matchIndex);
    return {
      ...emptyRow(node.id, node.url),
      reachable: node.reachable,
      role: node.role,
      term: self ? info.term : null,
      commitIndex: self ? info.commitIndex : null,
      appliedIndex: self ? info.appliedIndex : null,
      lag,
    };
  });
  return { source: 'client', leaderId: info.leaderId, term: info.term, nodes };
}

const dash = (value: number | null) => (value === null ? '-' : formatCount(value));

/** The status table for people. */
export function renderStatus(view: StatusView): string {
  const rows = view.nodes.map((n) => [
    n.id === view.leaderId ? `${n.id} *` : n.id,
    n.role,
    dash(n.term),
    dash(n.commitIndex),
    dash(n.appliedIndex),
    dash(n.lag),
    n.address ?? '-',
    n.reachable ? 'yes' : (n.error ?? 'no'),
  ]);
  const leader = view.leaderId === null ? 'no leader' : `leader ${view.leaderId}`;
  const term = view.term === null ? '' : `, term ${view.term}`;
  const via = view.source === 'client' ? ` (one node's view, via the client port)` : '';
  return `${leader}${term}${via}\n${renderTable(
    ['node', 'role', 'term', 'commit', 'applied', 'lag', 'address', 'reachable'],
    rows,
  )}`;
}

/** Exit code once some node answered: 0 with a leader, 1 without one. (No answer at all is 3, from the error.) */
export function statusExitCode(view: StatusView): number {
  return view.leaderId === null ? EXIT.failed : EXIT.ok;
}

interface StatusFlags extends ClientFlags {
  json?: boolean;
}

/** Collects the view: HTTP first, the SDK when no node answered over HTTP. */
export async function collectStatus(ctx: CliContext, flags: StatusFlags): Promise<StatusView> {
  const { servers, token } = connectOptionsFromFlags(flags, ctx.env);
  const answers = await Promise.all((servers as string[]).map((url) => askNode(ctx, url, token)));
  if (answers.some((a) => 'status' in a)) return statusFromHttp(answers);
  return statusFromClusterInfo(await withClient(ctx, flags, (client) => client.cluster()));
}

const STATUS_HELP = `
Examples:
  $ flotilla status
  $ flotilla status --servers ws://10.0.0.1:7400,ws://10.0.0.2:7400 --json

Asks each node for GET /api/cluster on its HTTP port (the one in --servers); lag is how many
entries a node is behind the leader. If no node answers over HTTP, shows one node's view through
the client connection. The leader is marked with *.

Exit codes: 0 a leader is known, 1 the nodes answer but there is no leader, 2 usage,
3 no node could be reached, 5 not allowed.
`;

/** Adds `flotilla status`. */
export function registerStatusCommand(program: Command, { ctx, run }: CommandEnv): void {
  const command = program
    .command('status')
    .description('show the cluster: nodes, roles, leader, term, commit and applied index, lag')
    .option('--json', 'print JSON instead of a table');
  addClientOptions(command)
    .addHelpText('after', STATUS_HELP)
    .action(
      run(async (flags: StatusFlags) => {
        const view = await collectStatus(ctx, flags);
        ctx.stdout.write(`${flags.json ? toJson(view, ctx.stdout.isTTY) : renderStatus(view)}\n`);
        if (view.leaderId === null) ctx.stderr.write('flotilla: the cluster has no leader\n');
        return statusExitCode(view);
      }),
    );
}
