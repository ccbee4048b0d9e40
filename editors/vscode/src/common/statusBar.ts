/**
 * The status bar item: swarm health from `swarm/status`, or the client's own state while the
 * server is not running. Formatting lives in status.ts (pure).
 */
import * as vscode from 'vscode';
import type { ClientState, SwarmServer } from './server';
import { type StatusView, formatClientState, formatStatus } from './status';

export class SwarmStatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(server: SwarmServer) {
    this.item = vscode.window.createStatusBarItem('swarmLsp.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'Swarm';
    this.item.command = 'swarmLsp.showStatus';
    this.show(formatClientState('starting'));
    this.item.show();
    this.disposables.push(
      this.item,
      server.onStatus((status) => {
        this.show(formatStatus(status));
      }),
      server.onState((state: ClientState) => {
        const last = server.lastStatus;
        this.show(state === 'running' && last ? formatStatus(last) : formatClientState(state));
      }),
    );
  }

  private show(view: StatusView): void {
    this.item.text = view.text;
    const tooltip = new vscode.MarkdownString(view.tooltip);
    tooltip.supportThemeIcons = true;
    this.item.tooltip = tooltip;
    this.item.backgroundColor =
      view.severity === 'error'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : view.severity === 'warning'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
  }

  dispose(): void {
    for (const disposable of this.disposables.splice(0)) {
      disposable.dispose();
    }
  }
}
