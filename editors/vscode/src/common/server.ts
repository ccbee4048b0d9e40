/**
 * The language client: starts `swarm-lsp serve` over stdio, keeps it configured, restarts it.
 *
 * Inline completions need no code here: vscode-languageclient 10+ registers its built-in
 * InlineCompletionItemFeature, which advertises `textDocument.inlineCompletion` and wires the
 * server's `inlineCompletionProvider` to VS Code's ghost text. The middleware below only lets
 * the user switch it off.
 */
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import {
  type CancellationToken,
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  State,
  WorkDoneProgress,
} from 'vscode-languageclient/node';
import { DEFAULT_DEBOUNCE_MS, InlineRequestGate } from './inlineGate';
import {
  type ResolvedServer,
  locate,
  missingServerMessage,
  resolveServer,
  settingsTarget,
} from './serverPath';
import { type SettingReader, needsRestart, toServerSettings, type ServerSettings } from './settings';
import {
  CHAT_REQUEST,
  RESULT_NOTIFICATION,
  STATUS_NOTIFICATION,
  type SwarmStatus,
  type TaskResult,
  type WorkDoneProgressValue,
  isStartedTask,
} from './protocol';
import { normalizeStatus } from './status';

export const CLIENT_ID = 'swarm';
export const CLIENT_NAME = 'Swarm';

export type ClientState = 'starting' | 'running' | 'stopped' | 'failed';

function workspaceFolderPath(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

function workspaceFolderPaths(): string[] {
  return (vscode.workspace.workspaceFolders ?? [])
    .filter((folder) => folder.uri.scheme === 'file')
    .map((folder) => folder.uri.fsPath);
}

function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The server command from the settings, the workspace's virtualenv, or PATH. */
export function currentServer(): ResolvedServer {
  return resolveServer(effectiveSettingReader(), workspaceFolderPaths(), isFile);
}

/** Values the user set (any level), undefined for defaults: the server has its own. */
export function userSettingReader(): SettingReader {
  const config = vscode.workspace.getConfiguration();
  return (key) => {
    const inspected = config.inspect(key);
    return inspected?.workspaceFolderValue ?? inspected?.workspaceValue ?? inspected?.globalValue;
  };
}

/** Effective values, defaults included (for the client's own settings). */
export function effectiveSettingReader(): SettingReader {
  const config = vscode.workspace.getConfiguration();
  return (key) => config.get(key);
}

export function currentServerSettings(): ServerSettings {
  return toServerSettings(userSettingReader());
}

export class SwarmServer implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<void> | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly clientDisposables: vscode.Disposable[] = [];
  private readonly statusEmitter = new vscode.EventEmitter<SwarmStatus>();
  private readonly stateEmitter = new vscode.EventEmitter<ClientState>();
  private progressCounter = 0;
  private last: SwarmStatus | undefined;
  /** Background work our commands started, by task id, waiting for its `swarm/result`. */
  private readonly pending = new Map<string, (result: TaskResult) => void>();
  /** Results that arrived before anyone waited for them (a few, by task id). */
  private readonly early = new Map<string, TaskResult>();
  private readonly inlineGate = new InlineRequestGate(() =>
    vscode.workspace
      .getConfiguration('swarm')
      .get<number>('inlineCompletions.debounceMs', DEFAULT_DEBOUNCE_MS),
  );

  /** Fired for every `swarm/status` notification. */
  readonly onStatus = this.statusEmitter.event;
  /** Fired when the language client starts, stops or fails. */
  readonly onState = this.stateEmitter.event;

  constructor(private readonly output: vscode.LogOutputChannel) {
    this.disposables.push(
      this.statusEmitter,
      this.stateEmitter,
      vscode.workspace.onDidChangeConfiguration((event) => {
        void this.onConfigurationChanged(event);
      }),
    );
  }

  /** The last `swarm/status` of the running server, if it sent one. */
  get lastStatus(): SwarmStatus | undefined {
    return this.last;
  }

  get isRunning(): boolean {
    return this.client?.state === State.Running;
  }

  async start(): Promise<void> {
    if (this.starting) {
      return this.starting;
    }
    this.starting = this.startClient().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async startClient(): Promise<void> {
    const resolved = currentServer();
    const { command, args } = resolved;
    if (locate(command, process.env.PATH, isFile) === undefined) {
      // Spawning would only fail with ENOENT: say where the fix goes instead.
      this.stateEmitter.fire('failed');
      this.output.error(`swarm-lsp not found: ${command} (${resolved.source})`);
      await this.offerSettings(resolved, 'missing');
      return;
    }
    this.output.info(`Starting ${[command, ...args].join(' ')} (${resolved.source})`);
    const serverOptions: ServerOptions = {
      command,
      args,
      options: { cwd: workspaceFolderPath(), env: { ...process.env } },
    };
    const client = new LanguageClient(CLIENT_ID, CLIENT_NAME, serverOptions, this.clientOptions());
    this.client = client;
    this.clientDisposables.push(
      client.onDidChangeState((event) => {
        if (event.newState === State.Running) {
          this.stateEmitter.fire('running');
        } else if (event.newState === State.Starting) {
          this.stateEmitter.fire('starting');
        } else {
          this.stateEmitter.fire('stopped');
        }
      }),
      client.onNotification(STATUS_NOTIFICATION, (params: unknown) => {
        this.last = normalizeStatus(params);
        this.statusEmitter.fire(this.last);
      }),
      client.onNotification(RESULT_NOTIFICATION, (params: TaskResult) => {
        const waiting = this.pending.get(params.taskId);
        if (waiting) {
          this.pending.delete(params.taskId);
          waiting(params);
          return;
        }
        this.early.set(params.taskId, params);
        if (this.early.size > 50) {
          this.early.delete(this.early.keys().next().value as string);
        }
      }),
    );
    this.stateEmitter.fire('starting');
    try {
      await client.start();
    } catch (err) {
      this.stateEmitter.fire('failed');
      const message = err instanceof Error ? err.message : String(err);
      this.output.error(`swarm-lsp did not start: ${message}`);
      await this.offerSettings(resolved, 'failed');
    }
  }

  /** The error with a button that opens the settings scope where a fix takes effect. */
  private async offerSettings(resolved: ResolvedServer, reason: 'missing' | 'failed'): Promise<void> {
    const key = resolved.source === 'python' ? 'swarm.server.python' : 'swarm.server.path';
    const target = settingsTarget(
      vscode.env.remoteName,
      vscode.workspace.getConfiguration().inspect(key),
      resolved.source,
    );
    const choice = await vscode.window.showErrorMessage(
      missingServerMessage(resolved, vscode.env.remoteName, reason),
      target.label,
      'Show Log',
    );
    if (choice === target.label) {
      await vscode.commands.executeCommand(target.command, ...target.args);
    } else if (choice === 'Show Log') {
      this.output.show(true);
    }
  }

  private clientOptions(): LanguageClientOptions {
    return {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      outputChannel: this.output,
      traceOutputChannel: this.output,
      initializationOptions: () => currentServerSettings(),
      middleware: {
        provideInlineCompletionItems: async (document, position, context, token, next) => {
          const enabled = vscode.workspace
            .getConfiguration('swarm', document)
            .get<boolean>('inlineCompletions.enable', true);
          if (!enabled) {
            return undefined;
          }
          // Debounced, and cancelled (here or at the server) once a newer keystroke asks.
          const own = new vscode.CancellationTokenSource();
          const cancel = (): void => {
            own.cancel();
          };
          const link = token.onCancellationRequested(cancel);
          try {
            const explicit = context.triggerKind === vscode.InlineCompletionTriggerKind.Invoke;
            if (!(await this.inlineGate.admit(own.token, cancel, explicit))) {
              return undefined;
            }
            return await next(document, position, context, own.token);
          } finally {
            this.inlineGate.finished(cancel);
            link.dispose();
            own.dispose();
          }
        },
        workspace: {
          // Answer workspace/configuration for "swarm" with the same object the server got at
          // initialize, not the raw VS Code section (which holds client-only keys).
          configuration: async (params, token, next) => {
            const result = await next(params, token);
            if (!Array.isArray(result)) {
              return result;
            }
            return params.items.map((item, index) =>
              item.section === 'swarm' ? currentServerSettings() : (result[index] as unknown),
            );
          },
        },
      },
    };
  }

  private async onConfigurationChanged(event: vscode.ConfigurationChangeEvent): Promise<void> {
    if (!event.affectsConfiguration('swarm')) {
      return;
    }
    if (needsRestart((key) => event.affectsConfiguration(key))) {
      this.output.info('Server settings changed; restarting swarm-lsp');
      await this.restart();
      return;
    }
    if (this.client && this.isRunning) {
      await this.client.sendNotification(DidChangeConfigurationNotification.type, {
        settings: { swarm: currentServerSettings() },
      });
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.last = undefined;
    for (const disposable of this.clientDisposables.splice(0)) {
      disposable.dispose();
    }
    if (client) {
      try {
        if (client.state !== State.Stopped) {
          await client.stop(5000);
        }
      } catch (err) {
        this.output.warn(`Stopping swarm-lsp: ${err instanceof Error ? err.message : String(err)}`);
      }
      await client.dispose().catch(() => undefined);
    }
    this.stateEmitter.fire('stopped');
  }

  private async runningClient(): Promise<LanguageClient> {
    if (!this.isRunning) {
      await this.start();
    }
    if (!this.client || !this.isRunning) {
      throw new Error('swarm-lsp is not running (see the Swarm log)');
    }
    return this.client;
  }

  /** A fresh work-done token for one streamed request. */
  newProgressToken(kind: string): string {
    this.progressCounter += 1;
    return `swarm-vscode-${kind}-${Date.now().toString(36)}-${this.progressCounter}`;
  }

  /**
   * Send a request with a work-done token and hand each `$/progress` value to `onProgress`
   * until the request settles.
   */
  async streamRequest<R>(
    method: string,
    params: Record<string, unknown>,
    onProgress: (value: WorkDoneProgressValue) => void,
    token?: CancellationToken,
  ): Promise<R> {
    const client = await this.runningClient();
    const workDoneToken = this.newProgressToken(method.replace(/[^a-z]/gi, ''));
    const subscription = client.onProgress(WorkDoneProgress.type, workDoneToken, (value) => {
      onProgress(value);
    });
    try {
      return await client.sendRequest<R>(method, { ...params, workDoneToken }, token);
    } finally {
      subscription.dispose();
    }
  }

  /** `swarm/chat` with streaming. */
  chat<R>(
    params: Record<string, unknown>,
    onProgress: (value: WorkDoneProgressValue) => void,
    token?: CancellationToken,
  ): Promise<R> {
    return this.streamRequest<R>(CHAT_REQUEST, params, onProgress, token);
  }

  /** workspace/executeCommand on the server, streaming its progress. */
  async executeCommand<R>(
    command: string,
    args: unknown[],
    onProgress: (value: WorkDoneProgressValue) => void = () => undefined,
    token?: CancellationToken,
  ): Promise<R> {
    const answer = await this.streamRequest<unknown>(
      ExecuteCommandRequest.method,
      { command, arguments: args },
      onProgress,
      token,
    );
    if (!isStartedTask(answer)) {
      return answer as R;
    }
    // The server started background work: follow its progress token until `swarm/result`.
    const client = await this.runningClient();
    const subscriptions: vscode.Disposable[] = [];
    if (answer.token) {
      subscriptions.push(client.onProgress(WorkDoneProgress.type, answer.token, onProgress));
    }
    try {
      const done = await new Promise<TaskResult>((resolve) => {
        const early = this.early.get(answer.taskId);
        if (early) {
          this.early.delete(answer.taskId);
          resolve(early);
          return;
        }
        this.pending.set(answer.taskId, resolve);
        if (token) {
          subscriptions.push(
            token.onCancellationRequested(() => {
              if (answer.token) {
                void client.sendNotification('window/workDoneProgress/cancel', { token: answer.token });
              } else {
                void client.sendRequest(ExecuteCommandRequest.type, {
                  command: 'swarm.cancel',
                  arguments: [answer.taskId],
                });
              }
            }),
          );
        }
      });
      if (!done.ok) {
        throw new Error(`${done.title}: ${done.error ?? 'failed'}`);
      }
      return done.result as R;
    } finally {
      for (const subscription of subscriptions) {
        subscription.dispose();
      }
    }
  }

  /** The current status from `swarm.status`, else the last notification. */
  async status(): Promise<SwarmStatus> {
    const client = await this.runningClient();
    try {
      const raw: unknown = await client.sendRequest(ExecuteCommandRequest.type, {
        command: 'swarm.status',
        arguments: [],
      });
      return normalizeStatus(raw);
    } catch (err) {
      if (this.last) {
        return this.last;
      }
      throw err;
    }
  }

  dispose(): void {
    void this.stop();
    for (const disposable of this.disposables.splice(0)) {
      disposable.dispose();
    }
  }
}
