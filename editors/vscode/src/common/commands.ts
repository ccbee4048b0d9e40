/**
 * The extension's commands. Each code-action command gathers the editor's URI and selection,
 * runs the matching server command with work-done progress shown as a notification, and puts
 * any text result in the chat view. Edits (workspace/applyEdit) and diagnostics arrive through
 * the language client on their own.
 */
import * as vscode from 'vscode';
import { describeCommandResult, formatAnswer } from './chat';
import type { ChatViewProvider } from './chatView';
import { CODE_COMMANDS, type CodeCommand, type EditorTarget, commandArguments } from './codeActions';
import { log, reportError } from './logging';
import { ServerCommands } from './protocol';
import type { SwarmServer } from './server';
import { formatStatus } from './status';

function editorTarget(editor: vscode.TextEditor | undefined): EditorTarget | undefined {
  if (!editor) {
    return undefined;
  }
  const { start, end } = editor.selection;
  return {
    uri: editor.document.uri.toString(),
    selection: {
      start: { line: start.line, character: start.character },
      end: { line: end.line, character: end.character },
    },
  };
}

async function runCodeCommand(
  command: CodeCommand,
  server: SwarmServer,
  chat: ChatViewProvider,
): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  let instruction: string | undefined;
  if (command.instruction) {
    instruction = await vscode.window.showInputBox({
      title: `Swarm: ${command.title}`,
      prompt: 'What should change?',
      placeHolder: 'e.g. extract a helper, add type hints, make it iterative',
      ignoreFocusOut: true,
    });
    if (instruction === undefined) {
      return;
    }
  }
  const args = commandArguments(
    command,
    editorTarget(editor),
    (line) => editor?.document.lineAt(line).text.length ?? 0,
    instruction,
  );
  const result = await vscode.window.withProgress(
    {
      location: vscode.ProgressLocation.Notification,
      title: `Swarm: ${command.title}`,
      cancellable: true,
    },
    async (progress, token) => {
      const tokenSource = new vscode.CancellationTokenSource();
      const subscription = token.onCancellationRequested(() => {
        tokenSource.cancel();
      });
      try {
        return await server.executeCommand<unknown>(
          command.server,
          args,
          (value) => {
            if (value.kind !== 'end' && value.message) {
              progress.report({ message: value.message });
            }
          },
          tokenSource.token,
        );
      } finally {
        subscription.dispose();
        tokenSource.dispose();
      }
    },
  );
  const text = describeCommandResult(result);
  if (text === undefined) {
    return;
  }
  if (command.output === 'chat') {
    const where = editor ? vscode.workspace.asRelativePath(editor.document.uri) : 'workspace';
    await chat.showResult(`${command.title}: ${where}`, `Swarm: ${command.title}`, text);
  } else {
    void vscode.window.showInformationMessage(`Swarm: ${text}`);
  }
}

async function ask(server: SwarmServer, chat: ChatViewProvider): Promise<void> {
  const question = await vscode.window.showInputBox({
    title: 'Swarm: Ask about this workspace',
    prompt: 'Answered from the research index, with citations',
    ignoreFocusOut: true,
  });
  if (!question) {
    return;
  }
  await chat.stream(
    question,
    'Swarm: Ask',
    (onProgress, token) => server.executeCommand<unknown>(ServerCommands.ask, [question], onProgress, token),
    formatAnswer,
  );
}

async function index(server: SwarmServer): Promise<void> {
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'Swarm: indexing workspace' },
    (progress) =>
      server.executeCommand<unknown>(ServerCommands.index, [], (value) => {
        if (value.kind !== 'end' && value.message) {
          progress.report({ message: value.message });
        }
      }),
  );
  const text = describeCommandResult(result);
  void vscode.window.showInformationMessage(`Swarm: ${text ?? 'workspace indexed'}`);
}

async function showStatus(server: SwarmServer): Promise<void> {
  if (!server.isRunning) {
    const choice = await vscode.window.showWarningMessage(
      'Swarm: swarm-lsp is not running.',
      'Restart',
      'Show Log',
    );
    if (choice === 'Restart') {
      await server.restart();
    } else if (choice === 'Show Log') {
      log().show(true);
    }
    return;
  }
  const status = await server.status();
  const view = formatStatus(status);
  log().info(`Swarm status:\n${view.tooltip}`);
  const machines = status.machines ?? [];
  const picks: vscode.QuickPickItem[] = [
    { label: view.text, detail: `coordinator ${status.coordinator ?? 'none'}` },
    ...machines.map((m) => ({
      label: `${m.alive ? '$(pass)' : '$(error)'} ${m.id}`,
      description: m.host,
      detail: `${m.roles.join(', ')} · load ${m.load}/${m.capacity}`,
    })),
    ...(status.recent ?? []).map((t) => ({
      label: `$(tasklist) ${t.type}`,
      description: t.state,
      detail: t.id,
    })),
  ];
  await vscode.window.showQuickPick(picks, { title: 'Swarm status', placeHolder: 'Machines and recent tasks' });
}

/** Wrap a command so a failure is logged and shown instead of vanishing. */
function guarded(name: string, run: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await run();
    } catch (err) {
      reportError(name, err);
    }
  };
}

export function registerCommands(server: SwarmServer, chat: ChatViewProvider): vscode.Disposable[] {
  const disposables = [
    vscode.commands.registerCommand(
      'swarmLsp.restartServer',
      guarded('restart', () => server.restart()),
    ),
    vscode.commands.registerCommand('swarmLsp.showLog', () => {
      log().show(true);
    }),
    vscode.commands.registerCommand('swarmLsp.showStatus', guarded('status', () => showStatus(server))),
    vscode.commands.registerCommand('swarmLsp.openChat', guarded('chat', () => chat.reveal())),
    vscode.commands.registerCommand('swarmLsp.clearChat', () => {
      chat.clear();
    }),
    vscode.commands.registerCommand('swarmLsp.ask', guarded('ask', () => ask(server, chat))),
    vscode.commands.registerCommand('swarmLsp.index', guarded('index', () => index(server))),
  ];
  for (const command of CODE_COMMANDS) {
    disposables.push(
      vscode.commands.registerCommand(
        command.id,
        guarded(command.title.toLowerCase(), () => runCodeCommand(command, server, chat)),
      ),
    );
  }
  return disposables;
}
