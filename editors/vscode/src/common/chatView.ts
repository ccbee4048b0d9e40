/**
 * The chat view (a webview in the Swarm side bar). Prompts go to `swarm/chat` with the active
 * editor's position; the answer streams in from `$/progress` deltas (assembled by ChatStream).
 * `swarm.ask` answers and text results of code-action commands are shown here too.
 */
import * as crypto from 'node:crypto';
import * as vscode from 'vscode';
import { ChatSession, ChatStream, chatResultText } from './chat';
import { type ToWebview, answerDetail, parseWebviewMessage } from './chatMessages';
import { reportError } from './logging';
import type { ChatResult, WorkDoneProgressValue } from './protocol';
import type { SwarmServer } from './server';

export const CHAT_VIEW_ID = 'swarmLsp.chat';

type Runner = (
  onProgress: (value: WorkDoneProgressValue) => void,
  token: vscode.CancellationToken,
) => Promise<unknown>;

export class ChatViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | undefined;
  private ready = false;
  private queue: ToWebview[] = [];
  private readonly session = new ChatSession();
  private cancellation: vscode.CancellationTokenSource | undefined;
  private counter = 0;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly server: SwarmServer,
  ) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.ready = false;
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    view.webview.options = { enableScripts: true, localResourceRoots: [media] };
    view.webview.html = this.html(view.webview, media);
    this.disposables.push(
      view.webview.onDidReceiveMessage((raw: unknown) => {
        this.onMessage(raw);
      }),
      view.onDidDispose(() => {
        this.view = undefined;
        this.ready = false;
      }),
    );
  }

  private onMessage(raw: unknown): void {
    const message = parseWebviewMessage(raw);
    if (!message) {
      return;
    }
    switch (message.type) {
      case 'ready':
        this.ready = true;
        for (const queued of this.queue.splice(0)) {
          void this.view?.webview.postMessage(queued);
        }
        break;
      case 'send':
        void this.chat(message.prompt);
        break;
      case 'cancel':
        this.cancellation?.cancel();
        break;
      case 'clear':
        this.clear();
        break;
    }
  }

  private post(message: ToWebview): void {
    if (this.view && this.ready) {
      void this.view.webview.postMessage(message);
    } else {
      this.queue.push(message);
    }
  }

  async reveal(): Promise<void> {
    await vscode.commands.executeCommand(`${CHAT_VIEW_ID}.focus`);
  }

  clear(): void {
    this.cancellation?.cancel();
    this.session.clear();
    this.queue = [];
    this.post({ type: 'clear' });
  }

  /** One chat turn: the prompt with the active editor's position and the history so far. */
  async chat(prompt: string): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const params: Record<string, unknown> = { prompt, history: this.session.history() };
    if (editor) {
      params.uri = editor.document.uri.toString();
      params.position = {
        line: editor.selection.active.line,
        character: editor.selection.active.character,
      };
    }
    const answer = await this.stream(prompt, undefined, (onProgress, token) =>
      this.server.chat<ChatResult>(params, onProgress, token),
    );
    if (answer !== undefined) {
      this.session.add(prompt, answer);
    }
  }

  /**
   * Show `userText`, run `runner` streaming its `$/progress` deltas into a new answer, and
   * settle the answer with `format(result)`. Returns the final text, or undefined on failure.
   */
  async stream(
    userText: string,
    title: string | undefined,
    runner: Runner,
    format: (result: unknown) => string = chatResultText,
  ): Promise<string | undefined> {
    await this.reveal();
    this.cancellation?.cancel();
    const cancellation = new vscode.CancellationTokenSource();
    this.cancellation = cancellation;
    this.counter += 1;
    const id = `m${this.counter}`;
    const stream = new ChatStream();
    this.post({ type: 'user', id: `${id}u`, text: userText });
    this.post({ type: 'start', id, title });
    this.post({ type: 'busy', busy: true });
    try {
      const result = await runner((value) => {
        const delta = stream.progress(value);
        if (delta !== '') {
          this.post({ type: 'delta', id, text: delta });
        }
      }, cancellation.token);
      const text = format(result);
      stream.finish(text);
      const raw = (typeof result === 'object' && result !== null ? result : {}) as Record<string, unknown>;
      this.post({ type: 'done', id, text, detail: answerDetail(raw.model, raw.elapsedMs) });
      return text;
    } catch (err) {
      const message = cancellation.token.isCancellationRequested
        ? 'Cancelled.'
        : err instanceof Error
          ? err.message
          : String(err);
      stream.fail(message);
      this.post({ type: 'error', id, message });
      if (!cancellation.token.isCancellationRequested) {
        reportError('chat failed', err);
      }
      return undefined;
    } finally {
      if (this.cancellation === cancellation) {
        this.cancellation = undefined;
      }
      cancellation.dispose();
      this.post({ type: 'busy', busy: false });
    }
  }

  /** Show a finished result (for example an explanation) as an answer. */
  async showResult(userText: string, title: string, text: string): Promise<void> {
    await this.reveal();
    this.counter += 1;
    const id = `m${this.counter}`;
    this.post({ type: 'user', id: `${id}u`, text: userText });
    this.post({ type: 'start', id, title });
    this.post({ type: 'done', id, text });
  }

  private html(webview: vscode.Webview, media: vscode.Uri): string {
    const nonce = crypto.randomBytes(16).toString('base64');
    const script = webview.asWebviewUri(vscode.Uri.joinPath(media, 'chat.js'));
    const style = webview.asWebviewUri(vscode.Uri.joinPath(media, 'chat.css'));
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${webview.cspSource}; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link href="${style.toString()}" rel="stylesheet">
<title>Swarm chat</title>
</head>
<body>
<main id="log" aria-live="polite"></main>
<form id="form">
<textarea id="prompt" rows="3" placeholder="Ask the local model… (Enter to send, Shift+Enter for a new line)"></textarea>
<div class="buttons">
<button id="cancel" type="button" disabled>Stop</button>
<button id="send" type="submit">Send</button>
</div>
</form>
<script nonce="${nonce}" src="${script.toString()}"></script>
</body>
</html>`;
  }

  dispose(): void {
    this.cancellation?.cancel();
    for (const disposable of this.disposables.splice(0)) {
      disposable.dispose();
    }
  }
}
