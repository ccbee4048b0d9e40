/**
 * Swarm health → status bar text. Pure, so it is unit-tested without VS Code.
 */
import type { MachineStatus, OwnedTask, PeerStatus, SwarmState, SwarmStatus } from './protocol';

export type StatusSeverity = 'ok' | 'busy' | 'warning' | 'error';

export interface StatusView {
  /** Status bar text; `$(icon)` codicons allowed. */
  text: string;
  /** Markdown tooltip. */
  tooltip: string;
  severity: StatusSeverity;
}

const STATE_ICONS: Record<SwarmState, string> = {
  starting: '$(loading~spin)',
  ready: '$(pulse)',
  degraded: '$(warning)',
  down: '$(error)',
};

const STATE_SEVERITY: Record<SwarmState, StatusSeverity> = {
  starting: 'busy',
  ready: 'ok',
  degraded: 'warning',
  down: 'error',
};

function isState(value: unknown): value is SwarmState {
  return typeof value === 'string' && value in STATE_ICONS;
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * One machine in either shape the server may send: the contract's `{id, host, roles, load,
 * capacity, alive}` or the dispatch client's `{workerId, name, host, roles, capacity, running,
 * load, draining, …}`. A listed machine without `alive` is alive (the coordinator lists live
 * workers).
 */
function normalizeMachine(raw: unknown): MachineStatus | undefined {
  if (typeof raw !== 'object' || raw === null) {
    return undefined;
  }
  const m = raw as Record<string, unknown>;
  const id = text(m.id) ?? text(m.name) ?? text(m.workerId);
  if (id === undefined) {
    return undefined;
  }
  const roles = Array.isArray(m.roles) ? m.roles.filter((r): r is string => typeof r === 'string') : [];
  return {
    id,
    host: text(m.host) ?? '?',
    roles,
    load: typeof m.running === 'number' ? count(m.running) : count(m.load),
    capacity: count(m.capacity),
    alive: typeof m.alive === 'boolean' ? m.alive : true,
  };
}

function records(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value)
    ? value.filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null)
    : [];
}

function normalizePeer(p: Record<string, unknown>): PeerStatus | undefined {
  const address = text(p.address);
  if (address === undefined) {
    return undefined;
  }
  return {
    address,
    id: text(p.id) ?? address,
    roles: Array.isArray(p.roles) ? p.roles.filter((r): r is string => typeof r === 'string') : [],
    rttMs: typeof p.rttMs === 'number' && Number.isFinite(p.rttMs) ? Math.max(p.rttMs, 0) : 0,
    current: p.current === true,
    running: count(p.running),
    capacity: count(p.capacity),
    error: text(p.error),
  };
}

function normalizeTask(t: Record<string, unknown>): OwnedTask {
  return {
    id: text(t.id) ?? text(t.taskId) ?? '?',
    type: text(t.type) ?? '?',
    state: text(t.state) ?? '?',
    owner: text(t.owner) ?? '?',
    worker: text(t.worker) ?? '',
  };
}

/** Keep what looks like a status; anything malformed becomes "down" rather than a crash. */
export function normalizeStatus(raw: unknown): SwarmStatus {
  if (typeof raw !== 'object' || raw === null) {
    return { state: 'down' };
  }
  const value = raw as Record<string, unknown>;
  const machines = Array.isArray(value.machines)
    ? value.machines.map(normalizeMachine).filter((m): m is MachineStatus => m !== undefined)
    : [];
  const coordinator = text(value.coordinator);
  let state: SwarmState = 'down';
  if (isState(value.state)) {
    state = value.state;
  } else if (coordinator !== undefined) {
    // No explicit state: a coordinator that answered is up; without machines it cannot work.
    state = machines.some((m) => m.alive) ? 'ready' : 'degraded';
  }
  const running =
    typeof value.running === 'number' ? count(value.running) : machines.reduce((sum, m) => sum + m.load, 0);
  const recent = Array.isArray(value.recent)
    ? value.recent
        .filter((t): t is Record<string, unknown> => typeof t === 'object' && t !== null)
        .map((t) => ({
          id: text(t.id) ?? text(t.taskId) ?? '?',
          type: text(t.type) ?? '?',
          state: text(t.state) ?? '?',
        }))
    : [];
  const peers = records(value.peers)
    .map(normalizePeer)
    .filter((p): p is PeerStatus => p !== undefined);
  const tasks = records(value.tasks).map(normalizeTask);
  return { state, coordinator, machines, queueDepth: count(value.queueDepth), running, recent, peers, tasks };
}

function escapeMarkdown(value: unknown): string {
  // Values come from the server; coerce defensively before escaping.
  return String(value).replace(/[\\`*_{}[\]()#+\-.!|<>]/g, (c) => `\\${c}`);
}

/** Inside a Markdown code span: nothing to escape but the backtick itself, dropped. */
function code(value: string): string {
  return value.replace(/`/g, '');
}

function machineLine(machine: MachineStatus): string {
  const roles = Array.isArray(machine.roles) && machine.roles.length > 0 ? machine.roles.join(', ') : 'no roles';
  const health = machine.alive ? 'alive' : 'lost';
  const load = `${count(machine.load)}/${count(machine.capacity)}`;
  return `- ${escapeMarkdown(machine.id)} on ${escapeMarkdown(machine.host)}: ${escapeMarkdown(roles)}, load ${load}, ${health}`;
}

/** The status bar item for a status notification. */
export function formatStatus(status: SwarmStatus): StatusView {
  const machines = status.machines ?? [];
  const alive = machines.filter((m) => m.alive).length;
  const queued = count(status.queueDepth);
  const running = count(status.running);
  const parts = [`${STATE_ICONS[status.state]} Swarm`];
  if (status.state !== 'starting' && status.state !== 'down') {
    parts.push(`${alive}/${machines.length}`);
  }
  if (running > 0) {
    parts.push(`$(sync~spin) ${running}`);
  }
  if (queued > 0) {
    parts.push(`$(list-ordered) ${queued}`);
  }
  const lines = [
    `**Swarm: ${status.state}**`,
    '',
    `Coordinator: ${status.coordinator ? `\`${status.coordinator}\`` : 'none'}`,
    '',
    `Machines: ${alive} alive of ${machines.length}; running ${running}, queued ${queued}`,
  ];
  if (machines.length > 0) {
    lines.push('', ...machines.map(machineLine));
  }
  const peers = status.peers ?? [];
  if (peers.length > 0) {
    lines.push('', `Mesh peers (${peers.length}):`, '');
    for (const peer of peers) {
      const roles = peer.roles.length > 0 ? peer.roles.join(', ') : 'no roles';
      const state = peer.error
        ? `unreachable: ${peer.error}`
        : `load ${count(peer.running)}/${count(peer.capacity)}, ${peer.rttMs.toFixed(1)} ms`;
      const current = peer.current ? ' (in use)' : '';
      lines.push(
        `- ${escapeMarkdown(peer.id)} \`${code(peer.address)}\`${current}: ${escapeMarkdown(roles)}, ${escapeMarkdown(state)}`,
      );
    }
  }
  const tasks = status.tasks ?? [];
  if (tasks.length > 0 && peers.length > 0) {
    lines.push('', 'In flight:', '');
    for (const task of tasks.slice(0, 10)) {
      const on = task.worker ? ` on ${escapeMarkdown(task.worker)}` : '';
      lines.push(
        `- ${escapeMarkdown(task.type)} ${escapeMarkdown(task.id)}: ${escapeMarkdown(task.state)}${on}, owned by \`${code(task.owner)}\``,
      );
    }
  }
  const recent = status.recent ?? [];
  if (recent.length > 0) {
    lines.push('', 'Recent tasks:', '');
    for (const task of recent.slice(0, 5)) {
      lines.push(
        `- ${escapeMarkdown(task.type)} ${escapeMarkdown(task.id)}: ${escapeMarkdown(task.state)}`,
      );
    }
  }
  return { text: parts.join(' '), tooltip: lines.join('\n'), severity: STATE_SEVERITY[status.state] };
}

/** What the item shows while the language server itself is not running. */
export function formatClientState(state: 'starting' | 'running' | 'stopped' | 'failed'): StatusView {
  switch (state) {
    case 'running':
      return {
        text: '$(pulse) Swarm',
        tooltip: 'swarm-lsp is running; no swarm status yet. Click for details.',
        severity: 'ok',
      };
    case 'starting':
      return { text: '$(loading~spin) Swarm', tooltip: 'Starting swarm-lsp…', severity: 'busy' };
    case 'stopped':
      return {
        text: '$(circle-slash) Swarm',
        tooltip: 'swarm-lsp is not running. Click for details.',
        severity: 'warning',
      };
    case 'failed':
      return {
        text: '$(error) Swarm',
        tooltip: 'swarm-lsp failed to start. Click to see the log.',
        severity: 'error',
      };
  }
}
