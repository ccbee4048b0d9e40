import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  SETTING_MAPPINGS,
  needsRestart,
  toServerCommand,
  toServerSettings,
} from '../src/common/settings';

function reader(values: Record<string, unknown>): (key: string) => unknown {
  return (key) => values[key];
}

describe('toServerSettings', () => {
  it('sends nothing when the user set nothing, so swarm.toml and server defaults apply', () => {
    assert.deepEqual(toServerSettings(reader({})), {});
  });

  it('groups set values by section with camelCase wire names', () => {
    const settings = toServerSettings(
      reader({
        'swarm.models.completionMaxTokens': 32,
        'swarm.models.completionModel': '/models/x.gguf',
        'swarm.coordinator': '127.0.0.1:50051',
        'swarm.autostart': false,
        'swarm.tls.ca': '/ca.pem',
        'swarm.allowedHosts': ['build.lan'],
        'swarm.context.indexOnStart': false,
        'swarm.research.collection': 'code',
        'swarm.server.path': '/usr/bin/swarm-lsp',
        'swarm.trace.server': 'verbose',
      }),
    );
    assert.deepEqual(settings, {
      models: { completionMaxTokens: 32, completionModel: '/models/x.gguf' },
      swarm: {
        coordinator: '127.0.0.1:50051',
        autostart: false,
        tlsCa: '/ca.pem',
        allowedHosts: ['build.lan'],
      },
      context: { indexOnStart: false },
      research: { collection: 'code' },
    });
  });

  it('keeps falsy values the user set explicitly', () => {
    assert.deepEqual(toServerSettings(reader({ 'swarm.models.temperature': 0, 'swarm.coordinator': '' })), {
      models: { temperature: 0 },
      swarm: { coordinator: '' },
    });
  });

  it('maps every setting to a distinct server setting', () => {
    const wire = SETTING_MAPPINGS.map((m) => `${m.section}.${m.name}`);
    assert.equal(new Set(wire).size, wire.length);
    const keys = SETTING_MAPPINGS.map((m) => m.key);
    assert.equal(new Set(keys).size, keys.length);
  });
});

describe('toServerCommand', () => {
  it('defaults to swarm-lsp serve', () => {
    assert.deepEqual(toServerCommand(reader({})), { command: 'swarm-lsp', args: ['serve'] });
  });

  it('uses the configured path and extra args', () => {
    assert.deepEqual(
      toServerCommand(reader({ 'swarm.server.path': '/opt/bin/swarm-lsp', 'swarm.server.args': ['--log-level', 'debug'] })),
      { command: '/opt/bin/swarm-lsp', args: ['serve', '--log-level', 'debug'] },
    );
  });

  it('prefers the Python interpreter and runs the module', () => {
    assert.deepEqual(
      toServerCommand(
        reader({ 'swarm.server.python': '${workspaceFolder}/.venv/bin/python', 'swarm.server.path': 'ignored' }),
        '/home/me/project',
      ),
      { command: '/home/me/project/.venv/bin/python', args: ['-m', 'swarm_lsp.cli', 'serve'] },
    );
  });

  it('ignores blank or mistyped values', () => {
    assert.deepEqual(
      toServerCommand(reader({ 'swarm.server.path': '  ', 'swarm.server.python': 3, 'swarm.server.args': 'x' })),
      { command: 'swarm-lsp', args: ['serve'] },
    );
  });
});

describe('needsRestart', () => {
  it('restarts for server settings only', () => {
    assert.equal(needsRestart((key) => key === 'swarm.server.python'), true);
    assert.equal(needsRestart((key) => key === 'swarm.models.chatModel'), false);
  });
});
