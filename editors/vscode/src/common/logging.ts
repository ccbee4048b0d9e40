/**
 * One LogOutputChannel ("Swarm") shared by the extension and the language client, so server
 * stderr, LSP traces (`swarm.trace.server`) and extension messages land in one place.
 */
import * as vscode from 'vscode';

let channel: vscode.LogOutputChannel | undefined;

export function createLog(): vscode.LogOutputChannel {
  channel ??= vscode.window.createOutputChannel('Swarm', { log: true });
  return channel;
}

export function log(): vscode.LogOutputChannel {
  return createLog();
}

/** Log an error with its message and show it where the user will see it. */
export function reportError(what: string, err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  log().error(`${what}: ${message}`);
  void vscode.window.showErrorMessage(`Swarm: ${what}: ${message}`, 'Show Log').then((choice) => {
    if (choice === 'Show Log') {
      log().show(true);
    }
  });
}
