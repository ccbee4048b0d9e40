/**
 * The message flow the extension relies on, against the real `swarm-lsp serve` (the same
 * JSON-RPC library vscode-languageclient uses, without VS Code): the initializationOptions
 * built from settings are accepted, the server advertises inline completion, its command ids
 * never collide with the extension's, didChangeConfiguration in the shape the extension sends
 * is accepted, and a `swarm/chat` answer streamed as `$/progress` deltas assembles (ChatStream)
 * into exactly the returned text.
 *
 * Skipped when no server is found: set SWARM_LSP_PYTHON to an interpreter with swarm-lsp
 * installed, or put `swarm-lsp` on PATH (scripts/test.sh puts the project venv there).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CodeActionRequest,
  DidChangeConfigurationNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  InitializeRequest,
  type InitializeResult,
  InitializedNotification,
  InlineCompletionRequest,
  type ProtocolConnection,
  ShowMessageNotification,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  WorkDoneProgress,
  createProtocolConnection,
} from 'vscode-languageserver-protocol/node';
import { ChatStream } from '../src/common/chat';
import { CHAT_REQUEST, type ChatResult } from '../src/common/protocol';
import { toServerCommand, toServerSettings } from '../src/common/settings';

const ROOT = path.resolve(__dirname, '..', '..');
const SAMPLE = path.resolve(ROOT, '..', '..', 'swarm_lsp', 'demo', 'sample_project');

/** What the user would have set in VS Code for a quick run. */
const USER_SETTINGS: Record<string, unknown> = {
  'swarm.models.chatMaxTokens': 12,
  'swarm.models.completionMaxTokens': 8,
  'swarm.autostart': false,
  'swarm.context.indexOnStart': false,
};

function serverCommand(): { command: string; args: string[] } | undefined {
  const python = process.env.SWARM_LSP_PYTHON;
  const command = toServerCommand((key) =>
    key === 'swarm.server.python' ? python : undefined,
  );
  const probe = spawnSync(command.command, [...command.args.slice(0, -1), '--version'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return probe.status === 0 ? command : undefined;
}

const found = fs.existsSync(SAMPLE) ? serverCommand() : undefined;

/**
 * Wait until the server has loaded its models. Workaround, to drop when the server keeps its
 * protocol channel off fd 1: while llama.cpp loads a model it points fd 1 at /dev/null, so what
 * the server writes then is lost. The start-up warm-up loads the completion model, then the chat
 * model; once a chat request is answered both are loaded. A lost answer is asked for again.
 */
async function settle(connection: ProtocolConnection): Promise<void> {
  for (let attempt = 0; attempt < 6; attempt += 1) {
    const answer = connection.sendRequest(CHAT_REQUEST, { prompt: 'Say ok.' }).then(
      () => true,
      () => false,
    );
    const timeout = new Promise<boolean>((resolve) => {
      setTimeout(() => {
        resolve(false);
      }, 20_000).unref();
    });
    if (await Promise.race([answer, timeout])) {
      return;
    }
  }
  throw new Error('the server never answered a chat request');
}

describe('real server message flow', { skip: found ? false : 'swarm-lsp not found', timeout: 180_000 }, () => {
  let server: ChildProcess;
  let connection: ProtocolConnection;
  let workspace: string;
  let init: InitializeResult;
  const messages: string[] = [];
  const stderr: string[] = [];

  before(async () => {
    assert.ok(found);
    workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'swarm-vscode-'));
    fs.cpSync(SAMPLE, workspace, { recursive: true });
    server = spawn(found.command, found.args, {
      cwd: workspace,
      env: process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    server.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
    connection = createProtocolConnection(
      new StreamMessageReader(server.stdout as NodeJS.ReadableStream),
      new StreamMessageWriter(server.stdin as NodeJS.WritableStream),
    );
    connection.onNotification(ShowMessageNotification.method, (params: { message: string }) => {
      messages.push(params.message);
    });
    connection.listen();
    const uri = `file://${workspace}`;
    init = await connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      // Required by the type; the server, like current clients, uses workspaceFolders.
      // eslint-disable-next-line @typescript-eslint/no-deprecated
      rootUri: uri,
      workspaceFolders: [{ uri, name: 'sample' }],
      capabilities: {
        window: { workDoneProgress: true },
        textDocument: {
          inlineCompletion: { dynamicRegistration: true },
          // As vscode-languageclient advertises it: edits may come from codeAction/resolve.
          codeAction: {
            codeActionLiteralSupport: { codeActionKind: { valueSet: ['', 'quickfix', 'refactor', 'source'] } },
            resolveSupport: { properties: ['edit'] },
            dataSupport: true,
          },
        },
      },
      initializationOptions: toServerSettings((key) => USER_SETTINGS[key]),
    });
    await connection.sendNotification(InitializedNotification.type, {});
    await settle(connection);
  });

  after(async () => {
    try {
      await connection.sendRequest(ShutdownRequest.type);
      await connection.sendNotification(ExitNotification.type);
    } catch {
      // The server may already be gone; it is killed below either way.
    }
    connection.dispose();
    server.kill();
    fs.rmSync(workspace, { recursive: true, force: true });
  });

  it('advertises inline completion and commands that do not collide with ours', () => {
    assert.ok(init.capabilities.inlineCompletionProvider, 'inlineCompletionProvider');
    assert.ok(init.capabilities.completionProvider, 'completionProvider');
    const commands = init.capabilities.executeCommandProvider?.commands ?? [];
    assert.ok(commands.includes('swarm.chat'), commands.join(', '));
    const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      contributes: { commands: { command: string }[] };
    };
    for (const { command } of manifest.contributes.commands) {
      assert.ok(!commands.includes(command), `${command} is also a server command`);
    }
  });

  it('accepts the settings the extension sends, at start and on change', async () => {
    await connection.sendNotification(DidChangeConfigurationNotification.type, {
      settings: { swarm: toServerSettings((key) => USER_SETTINGS[key]) },
    });
    // A round trip after the notification: any complaint about the settings has arrived.
    await connection.sendRequest(InlineCompletionRequest.type, {
      textDocument: { uri: `file://${workspace}/nothing-open.py` },
      position: { line: 0, character: 0 },
      context: { triggerKind: 2 },
    });
    assert.deepEqual(
      messages.filter((m) => /setting/i.test(m)),
      [],
      'the server complained about settings',
    );
  });

  it('answers inline completion requests the way the client sends them', async () => {
    const file = path.join(workspace, 'shapes', 'geometry.py');
    const uri = `file://${file}`;
    const text = fs.readFileSync(file, 'utf8');
    await connection.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri, languageId: 'python', version: 1, text },
    });
    const line = text.split('\n').findIndex((l) => l.includes('return self.width * self.height'));
    const result = await connection.sendRequest(InlineCompletionRequest.type, {
      textDocument: { uri },
      position: { line, character: 8 },
      context: { triggerKind: 2 },
    });
    const items = Array.isArray(result) ? result : (result?.items ?? []);
    assert.ok(Array.isArray(items));
    for (const item of items) {
      assert.equal(typeof item.insertText === 'string' ? 'string' : item.insertText.kind, 'string');
    }
  });

  it('lists the swarm code actions on a range, as the light bulb asks', async (t) => {
    if (!init.capabilities.codeActionProvider) {
      t.skip('the server offers no code actions yet');
      return;
    }
    const uri = `file://${path.join(workspace, 'shapes', 'geometry.py')}`;
    const actions = await connection.sendRequest(CodeActionRequest.type, {
      textDocument: { uri },
      range: { start: { line: 21, character: 0 }, end: { line: 24, character: 0 } },
      context: { diagnostics: [], triggerKind: 1 },
    });
    const titles = (actions ?? []).map((a) => a.title);
    assert.deepEqual(titles, [
      'Swarm: Refactor…',
      'Swarm: Explain',
      'Swarm: Review',
      'Swarm: Generate tests',
      'Swarm: Research this symbol',
      'Swarm: Run tests',
    ]);
    // Every action's command (when it has one) is a server command the client can run.
    const commands = init.capabilities.executeCommandProvider?.commands ?? [];
    for (const action of actions ?? []) {
      const command = 'command' in action ? action.command : undefined;
      if (typeof command === 'object') {
        assert.ok(commands.includes(command.command), command.command);
      }
    }
  });

  it('streams swarm/chat as progress deltas that assemble into the answer', async () => {
    const stream = new ChatStream();
    const deltas: string[] = [];
    const token = 'swarm-vscode-test-chat-1';
    const subscription = connection.onProgress(WorkDoneProgress.type, token, (value) => {
      const delta = stream.progress(value);
      if (delta !== '') {
        deltas.push(delta);
      }
    });
    const file = path.join(workspace, 'shapes', 'geometry.py');
    const result = await connection.sendRequest<ChatResult>(CHAT_REQUEST, {
      prompt: 'What does Rectangle.area return? One sentence.',
      uri: `file://${file}`,
      position: { line: 19, character: 8 },
      history: [],
      workDoneToken: token,
    });
    subscription.dispose();
    assert.equal(stream.phase, 'ended', stderr.join('').slice(-2000));
    assert.ok(deltas.length >= 2, `expected a stream, got ${deltas.length} delta(s)`);
    assert.equal(stream.text, result.text);
    stream.finish(result.text);
    assert.ok(result.text.trim() !== '');
    assert.match(result.model, /smollm2/i);
    assert.equal(typeof result.elapsedMs, 'number');
  });
});
