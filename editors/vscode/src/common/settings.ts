/**
 * VS Code settings → what the server is started with and what it is told.
 *
 * Pure: no `vscode` import, so it is unit-tested under plain node. The caller passes a reader
 * that returns a setting's value only when the user set it (user, workspace or folder level),
 * and `undefined` otherwise: the server has its own defaults and reads `swarm.toml`, and a
 * default sent from here would silently override that file.
 */

/** The four settings sections the server understands (camelCase on the wire). */
export type SectionName = 'models' | 'context' | 'swarm' | 'research';

export type ServerSettings = Partial<Record<SectionName, Record<string, unknown>>>;

/** Reads one setting (full key, e.g. `swarm.models.chatModel`); undefined when not set. */
export type SettingReader = (key: string) => unknown;

/** One VS Code setting key → one server setting. */
export interface SettingMapping {
  readonly key: string;
  readonly section: SectionName;
  readonly name: string;
}

function section(sectionName: SectionName, names: readonly string[]): SettingMapping[] {
  return names.map((name) => ({
    key: `swarm.${sectionName}.${name}`,
    section: sectionName,
    name,
  }));
}

/**
 * Every contributed setting the server reads. The `swarm` section's keys sit one level up in
 * VS Code (`swarm.coordinator`, not `swarm.swarm.coordinator`).
 */
export const SETTING_MAPPINGS: readonly SettingMapping[] = [
  ...section('models', [
    'completionModel',
    'chatModel',
    'nCtx',
    'nThreads',
    'completionMaxTokens',
    'completionMaxLines',
    'completionTimeoutMs',
    'completionSpeculate',
    'chatMaxTokens',
    'temperature',
    'endpointUrl',
    'endpointModel',
  ]),
  ...section('context', [
    'completionBudgetTokens',
    'ringChunks',
    'ringChunkLines',
    'ringTokens',
    'taskBudgetTokens',
    'maxFileBytes',
    'indexOnStart',
  ]),
  { key: 'swarm.coordinator', section: 'swarm', name: 'coordinator' },
  { key: 'swarm.autostart', section: 'swarm', name: 'autostart' },
  { key: 'swarm.token', section: 'swarm', name: 'token' },
  { key: 'swarm.tls.ca', section: 'swarm', name: 'tlsCa' },
  { key: 'swarm.tls.cert', section: 'swarm', name: 'tlsCert' },
  { key: 'swarm.tls.key', section: 'swarm', name: 'tlsKey' },
  { key: 'swarm.allowedHosts', section: 'swarm', name: 'allowedHosts' },
  { key: 'swarm.routingTable', section: 'swarm', name: 'routingTable' },
  { key: 'swarm.waitBoundMs', section: 'swarm', name: 'waitBoundMs' },
  ...section('research', ['qdrantUrl', 'qdrantPath', 'collection']),
];

/** Settings only the extension reads; never sent to the server. */
export const CLIENT_SETTING_KEYS: readonly string[] = [
  'swarm.server.path',
  'swarm.server.python',
  'swarm.server.args',
  'swarm.trace.server',
  'swarm.inlineCompletions.enable',
  'swarm.inlineCompletions.debounceMs',
];

/** Settings whose change needs a new server process rather than didChangeConfiguration. */
export const RESTART_SETTING_KEYS: readonly string[] = [
  'swarm.server.path',
  'swarm.server.python',
  'swarm.server.args',
];

/**
 * The object sent as initializationOptions and inside didChangeConfiguration: only the settings
 * the user set, grouped by section; sections with nothing set are left out.
 */
export function toServerSettings(read: SettingReader): ServerSettings {
  const result: ServerSettings = {};
  for (const mapping of SETTING_MAPPINGS) {
    const value = read(mapping.key);
    if (value === undefined || value === null) {
      continue;
    }
    const target = (result[mapping.section] ??= {});
    target[mapping.name] = value;
  }
  return result;
}

/** How to start the server process. */
export interface ServerCommand {
  readonly command: string;
  readonly args: string[];
}

export const DEFAULT_SERVER_PATH = 'swarm-lsp';

function asString(value: unknown): string {
  return typeof value === 'string' ? value.trim() : '';
}

function asStringList(value: unknown): string[] {
  if (!Array.isArray(value)) {
    return [];
  }
  return value.filter((item): item is string => typeof item === 'string');
}

/**
 * `swarm.server.python` wins (`<python> -m swarm_lsp.cli serve …`); otherwise
 * `swarm.server.path` (`swarm-lsp serve …`). `${workspaceFolder}` in paths and args is expanded
 * when a folder is open.
 */
export function toServerCommand(read: SettingReader, workspaceFolder?: string): ServerCommand {
  const expand = (text: string): string =>
    workspaceFolder === undefined ? text : text.split('${workspaceFolder}').join(workspaceFolder);
  const extra = asStringList(read('swarm.server.args')).map(expand);
  const python = expand(asString(read('swarm.server.python')));
  if (python !== '') {
    return { command: python, args: ['-m', 'swarm_lsp.cli', 'serve', ...extra] };
  }
  const path = expand(asString(read('swarm.server.path'))) || DEFAULT_SERVER_PATH;
  return { command: path, args: ['serve', ...extra] };
}

/** True when any of `changedKeys`' effect needs the server restarted. */
export function needsRestart(affects: (key: string) => boolean): boolean {
  return RESTART_SETTING_KEYS.some(affects);
}
