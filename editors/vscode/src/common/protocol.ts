/**
 * The swarm-lsp server's custom protocol, as the extension sees it. Pure types and names; the
 * server (swarm_lsp/server) is the other side of this contract.
 */

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export type ChatRole = 'user' | 'assistant' | 'system';

export interface ChatTurn {
  role: ChatRole;
  content: string;
}

/** Params of the `swarm/chat` request. */
export interface ChatParams {
  prompt: string;
  uri?: string;
  position?: Position;
  history?: ChatTurn[];
  workDoneToken?: string;
}

/** Result of `swarm/chat` (and of the `swarm.chat` command). */
export interface ChatResult {
  text: string;
  model: string;
  elapsedMs: number;
}

export interface Citation {
  path: string;
  line: number;
}

/** Result of the `swarm.ask` command. */
export interface AskResult {
  answer: string;
  citations: Citation[];
}

export type SwarmState = 'starting' | 'ready' | 'degraded' | 'down';

export interface MachineStatus {
  id: string;
  host: string;
  roles: string[];
  load: number;
  capacity: number;
  alive: boolean;
}

export interface RecentTask {
  id: string;
  type: string;
  state: string;
}

/** A live peer of the mesh, as the server sees it (empty list with one coordinator). */
export interface PeerStatus {
  address: string;
  id: string;
  roles: string[];
  rttMs: number;
  current: boolean;
  running?: number;
  capacity?: number;
  error?: string;
}

/** A task in flight and the peer that owns it (the one that accepted it). */
export interface OwnedTask {
  id: string;
  type: string;
  state: string;
  owner: string;
  worker: string;
}

/** Params of the `swarm/status` notification and result of the `swarm.status` command. */
export interface SwarmStatus {
  state: SwarmState;
  coordinator?: string;
  machines?: MachineStatus[];
  queueDepth?: number;
  running?: number;
  recent?: RecentTask[];
  peers?: PeerStatus[];
  tasks?: OwnedTask[];
}

export const CHAT_REQUEST = 'swarm/chat';
export const STATUS_NOTIFICATION = 'swarm/status';
export const RESULT_NOTIFICATION = 'swarm/result';

/** A command that starts swarm work answers at once with this. */
export interface StartedTask {
  status: 'started';
  taskId: string;
  token?: string;
  command: string;
  title: string;
}

/** Params of `swarm/result`: how the background work of a command ended. */
export interface TaskResult {
  taskId: string;
  command: string;
  title: string;
  ok: boolean;
  result?: unknown;
  error?: string;
}

export function isStartedTask(value: unknown): value is StartedTask {
  const v = value as Partial<StartedTask> | null;
  return typeof v === 'object' && v !== null && v.status === 'started' && typeof v.taskId === 'string';
}

/** Commands the server runs through workspace/executeCommand. */
export const ServerCommands = {
  chat: 'swarm.chat',
  ask: 'swarm.ask',
  index: 'swarm.index',
  refactor: 'swarm.refactor',
  explain: 'swarm.explain',
  review: 'swarm.review',
  generateTests: 'swarm.generateTests',
  research: 'swarm.research',
  runTests: 'swarm.runTests',
  status: 'swarm.status',
  cancel: 'swarm.cancel',
} as const;

export type ServerCommand = (typeof ServerCommands)[keyof typeof ServerCommands];

/** `$/progress` values for a work-done token (LSP WorkDoneProgress{Begin,Report,End}). */
export type WorkDoneProgressValue =
  | { kind: 'begin'; title: string; message?: string; percentage?: number; cancellable?: boolean }
  | { kind: 'report'; message?: string; percentage?: number; cancellable?: boolean }
  | { kind: 'end'; message?: string };
