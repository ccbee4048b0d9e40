/**
 * Where the server executable is, whether it is there, and which settings scope to open when it
 * is not.
 *
 * Pure (the file system and PATH come in as functions), so it is unit-tested under plain node.
 * Order: `swarm.server.python`, then a `swarm.server.path` the user set, then the workspace's
 * own virtualenv (`.venv/bin/swarm-lsp`, as `python -m venv .venv && pip install swarm-lsp`
 * makes it), then `swarm-lsp` on PATH.
 */
import * as path from 'node:path';
import { DEFAULT_SERVER_PATH, type ServerCommand, type SettingReader, toServerCommand } from './settings';

/** Where the command came from; the error message and the settings button depend on it. */
export type ServerSource = 'python' | 'path' | 'workspace' | 'default';

export interface ResolvedServer extends ServerCommand {
  readonly source: ServerSource;
}

/** Virtualenv folders searched in each workspace folder, in order. */
export const VENV_FOLDERS: readonly string[] = ['.venv', 'venv', 'env'];

/** The server executables a workspace's virtualenv may hold, most likely first. */
export function workspaceCandidates(folder: string, platform: NodeJS.Platform = process.platform): string[] {
  return VENV_FOLDERS.map((venv) =>
    platform === 'win32'
      ? path.win32.join(folder, venv, 'Scripts', 'swarm-lsp.exe')
      : path.posix.join(folder, venv, 'bin', 'swarm-lsp'),
  );
}

function isSet(value: unknown): boolean {
  return typeof value === 'string' && value.trim() !== '';
}

/**
 * The command to start. `read` returns effective values (defaults included); a `swarm.server.path`
 * equal to the default counts as not set, so the workspace's virtualenv wins over PATH.
 * A relative path is taken from the first workspace folder.
 */
export function resolveServer(
  read: SettingReader,
  folders: readonly string[],
  isFile: (file: string) => boolean,
  platform: NodeJS.Platform = process.platform,
): ResolvedServer {
  const first = folders[0];
  const command = toServerCommand(read, first);
  if (isSet(read('swarm.server.python'))) {
    return { ...command, command: absolute(command.command, first), source: 'python' };
  }
  const configured = read('swarm.server.path');
  if (isSet(configured) && String(configured).trim() !== DEFAULT_SERVER_PATH) {
    return { ...command, command: absolute(command.command, first), source: 'path' };
  }
  for (const folder of folders) {
    const found = workspaceCandidates(folder, platform).find(isFile);
    if (found !== undefined) {
      return { ...command, command: found, source: 'workspace' };
    }
  }
  return { ...command, source: 'default' };
}

function hasSeparator(command: string): boolean {
  return command.includes('/') || command.includes('\\');
}

/** A path with a folder part is taken from the workspace folder; a bare name stays for PATH. */
function absolute(command: string, folder: string | undefined): string {
  if (!hasSeparator(command) || path.isAbsolute(command) || folder === undefined) {
    return command;
  }
  return path.join(folder, command);
}

/**
 * Where `command` would run from: itself when it names a file, else the first PATH entry
 * holding it; undefined when there is none (the spawn would fail with ENOENT).
 */
export function locate(
  command: string,
  envPath: string | undefined,
  isFile: (file: string) => boolean,
  platform: NodeJS.Platform = process.platform,
): string | undefined {
  if (hasSeparator(command) || path.isAbsolute(command)) {
    return isFile(command) ? command : undefined;
  }
  const delimiter = platform === 'win32' ? ';' : ':';
  const suffixes = platform === 'win32' ? ['', '.exe', '.cmd', '.bat'] : [''];
  for (const dir of (envPath ?? '').split(delimiter)) {
    if (dir === '') {
      continue;
    }
    for (const suffix of suffixes) {
      const candidate = path.join(dir, command + suffix);
      if (isFile(candidate)) {
        return candidate;
      }
    }
  }
  return undefined;
}

/** Where a setting's value came from (`WorkspaceConfiguration.inspect`). */
export interface InspectedSetting {
  readonly workspaceFolderValue?: unknown;
  readonly workspaceValue?: unknown;
  readonly globalValue?: unknown;
}

/** The settings editor to open for the server settings, and the button's label. */
export interface SettingsTarget {
  readonly label: string;
  readonly command: string;
  readonly args: unknown[];
}

/** The settings shown: the server group, so path, python and args are side by side. */
export const SERVER_SETTINGS_QUERY = 'swarm.server';

/**
 * Open the settings where a fix takes effect: the folder or workspace settings when the wrong
 * value is set there; in a remote window (SSH, WSL, containers, code-server) the Remote
 * settings, since user settings do not apply to `swarm.server.*` there (their scope is
 * machine-overridable); otherwise the user settings.
 */
export function settingsTarget(
  remoteName: string | undefined,
  inspected: InspectedSetting | undefined,
  source: ServerSource,
): SettingsTarget {
  const query = { query: SERVER_SETTINGS_QUERY };
  const setting = source === 'python' ? 'swarm.server.python' : 'swarm.server.path';
  if (inspected?.workspaceFolderValue !== undefined) {
    return { label: 'Open Folder Settings', command: 'workbench.action.openFolderSettings', args: [query] };
  }
  if (inspected?.workspaceValue !== undefined) {
    return { label: 'Open Workspace Settings', command: 'workbench.action.openWorkspaceSettings', args: [query] };
  }
  if (remoteName) {
    return { label: 'Open Remote Settings', command: 'workbench.action.openRemoteSettings', args: [query] };
  }
  return {
    label: 'Open User Settings',
    command: 'workbench.action.openSettings',
    args: [{ query: setting === 'swarm.server.path' ? SERVER_SETTINGS_QUERY : setting }],
  };
}

/** The error shown when the server cannot start, naming what was tried and where to fix it. */
export function missingServerMessage(
  resolved: ResolvedServer,
  remoteName: string | undefined,
  reason: 'missing' | 'failed',
): string {
  const what =
    reason === 'missing'
      ? resolved.source === 'default'
        ? `swarm-lsp was not found: not in the workspace's ${VENV_FOLDERS.map((v) => `${v}/bin`).join(', ')} and not on PATH.`
        : `"${resolved.command}" (from ${resolved.source === 'python' ? 'swarm.server.python' : resolved.source === 'path' ? 'swarm.server.path' : 'the workspace virtualenv'}) does not exist.`
      : `"${resolved.command}" did not start.`;
  const fix =
    'Install it (pip install swarm-lsp, or `make install` in a checkout) or set swarm.server.path to the full path of swarm-lsp';
  const where = remoteName
    ? ` in the Remote settings: in a remote window user settings do not apply to swarm.server.path.`
    : '.';
  return `Swarm: ${what} ${fix}${where}`;
}
