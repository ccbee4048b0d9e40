/**
 * Swarm LSP for VS Code: activate and deactivate only; the parts live in src/common/.
 */
import * as vscode from 'vscode';
import { CHAT_VIEW_ID, ChatViewProvider } from './common/chatView';
import { registerCommands } from './common/commands';
import { createLog } from './common/logging';
import { SwarmServer } from './common/server';
import { SwarmStatusBar } from './common/statusBar';

let server: SwarmServer | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = createLog();
  server = new SwarmServer(output);
  const chat = new ChatViewProvider(context.extensionUri, server);
  context.subscriptions.push(
    output,
    server,
    new SwarmStatusBar(server),
    chat,
    vscode.window.registerWebviewViewProvider(CHAT_VIEW_ID, chat, {
      webviewOptions: { retainContextWhenHidden: true },
    }),
    ...registerCommands(server, chat),
  );
  await server.start();
}

export async function deactivate(): Promise<void> {
  await server?.stop();
  server = undefined;
}
