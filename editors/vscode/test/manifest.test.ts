/**
 * package.json against the code: every contributed setting is mapped or client-only, every
 * command is registered, no command id collides with the server's, and the pinned
 * vscode-languageclient advertises inline completion.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import Module from 'node:module';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { CODE_COMMANDS } from '../src/common/codeActions';
import { DEFAULT_DEBOUNCE_MS } from '../src/common/inlineGate';
import { DEFAULT_SERVER_PATH } from '../src/common/settings';
import { ServerCommands } from '../src/common/protocol';
import { CLIENT_SETTING_KEYS, SETTING_MAPPINGS } from '../src/common/settings';

// out/test/manifest.test.js → the extension folder.
const ROOT = path.resolve(__dirname, '..', '..');

interface Manifest {
  main: string;
  engines: { vscode: string };
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  contributes: {
    configuration: { properties: Record<string, { default?: unknown; scope?: string }> }[];
    commands: { command: string }[];
    menus: Record<string, { command?: string }[]>;
  };
}

const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Manifest;
const contributed = manifest.contributes.configuration.flatMap((section) => Object.keys(section.properties));

function property(key: string): { default?: unknown; scope?: string } {
  const found = manifest.contributes.configuration.find((section) => key in section.properties);
  assert.ok(found, key);
  return found.properties[key] ?? {};
}

describe('package.json', () => {
  it('contributes exactly the mapped and client-only settings', () => {
    const known = [...SETTING_MAPPINGS.map((m) => m.key), ...CLIENT_SETTING_KEYS].sort();
    assert.deepEqual([...contributed].sort(), known);
  });

  it('debounces ghost text by the code default (150 ms, as llama.vscode)', () => {
    assert.equal(property('swarm.inlineCompletions.debounceMs').default, DEFAULT_DEBOUNCE_MS);
    assert.equal(DEFAULT_DEBOUNCE_MS, 150);
  });

  it('keeps swarm.server.path machine-overridable with the default the discovery expects', () => {
    const serverPath = property('swarm.server.path');
    assert.equal(serverPath.scope, 'machine-overridable');
    assert.equal(serverPath.default, DEFAULT_SERVER_PATH);
  });

  it('has the trace setting vscode-languageclient reads for client id "swarm"', () => {
    assert.ok(contributed.includes('swarm.trace.server'));
  });

  it('contributes every code-action command and never a server command id', () => {
    const commands = manifest.contributes.commands.map((c) => c.command);
    for (const command of CODE_COMMANDS) {
      assert.ok(commands.includes(command.id), command.id);
    }
    const serverIds = new Set<string>(Object.values(ServerCommands));
    for (const command of commands) {
      assert.ok(!serverIds.has(command), `${command} would collide with the server's command`);
    }
  });

  it('menus only name contributed commands', () => {
    const commands = new Set(manifest.contributes.commands.map((c) => c.command));
    for (const entries of Object.values(manifest.contributes.menus)) {
      for (const entry of entries) {
        if (entry.command !== undefined) {
          assert.ok(commands.has(entry.command), entry.command);
        }
      }
    }
  });

  it('runs the bundle and keeps @types/vscode within the engine', () => {
    assert.equal(manifest.main, './dist/extension.js');
    assert.equal(manifest.engines.vscode, `^${manifest.devDependencies['@types/vscode'] ?? ''}`);
  });
});

describe('vscode-languageclient', () => {
  // The library needs the `vscode` module at load time; a stub that hands out empty classes is
  // enough to load it outside VS Code (which cannot be downloaded here) and inspect features.
  function loadWithStub(request: string): unknown {
    const stub = new Proxy<Record<string | symbol, unknown>>(
      {},
      {
        get(target, prop) {
          // A fresh constructor per name: the library extends some vscode classes at load.
          target[prop] ??= function StubClass() {
            return undefined;
          };
          return target[prop];
        },
      },
    );
    const loader = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
    const original = loader._load;
    loader._load = function (this: unknown, name: string, ...rest: unknown[]) {
      return name === 'vscode' ? stub : original.call(this, name, ...rest);
    };
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return require(request);
    } finally {
      loader._load = original;
    }
  }

  it('registers the inline completion feature by default', () => {
    const client = loadWithStub('vscode-languageclient/node') as {
      LanguageClient: { prototype: { registerBuiltinFeatures: () => void } };
    };
    assert.match(String(client.LanguageClient.prototype.registerBuiltinFeatures), /InlineCompletionItemFeature/);
  });

  it('advertises textDocument.inlineCompletion', () => {
    const feature = loadWithStub('vscode-languageclient/$test/common/inlineCompletion') as {
      InlineCompletionItemFeature: new (client: unknown) => { fillClientCapabilities: (c: object) => void };
    };
    const capabilities: { textDocument?: { inlineCompletion?: unknown } } = {};
    new feature.InlineCompletionItemFeature({}).fillClientCapabilities(capabilities);
    assert.deepEqual(capabilities.textDocument?.inlineCompletion, { dynamicRegistration: true });
  });
});
