import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  locate,
  missingServerMessage,
  resolveServer,
  settingsTarget,
  workspaceCandidates,
} from '../src/common/serverPath';

function reader(values: Record<string, unknown>): (key: string) => unknown {
  // Effective values: the manifest's defaults unless set.
  const defaults: Record<string, unknown> = {
    'swarm.server.path': 'swarm-lsp',
    'swarm.server.python': '',
    'swarm.server.args': [],
  };
  return (key) => (key in values ? values[key] : defaults[key]);
}

const files = (...paths: string[]) => (file: string) => paths.includes(file);

describe('resolveServer', () => {
  it("finds the workspace's .venv/bin/swarm-lsp by itself", () => {
    const resolved = resolveServer(reader({}), ['/p'], files('/p/.venv/bin/swarm-lsp'), 'linux');
    assert.deepEqual(resolved, { command: '/p/.venv/bin/swarm-lsp', args: ['serve'], source: 'workspace' });
  });

  it('looks in every workspace folder and in venv/ too', () => {
    const resolved = resolveServer(reader({}), ['/a', '/b'], files('/b/venv/bin/swarm-lsp'), 'linux');
    assert.equal(resolved.command, '/b/venv/bin/swarm-lsp');
  });

  it('uses Scripts\\swarm-lsp.exe on Windows', () => {
    assert.equal(workspaceCandidates('C:\\p', 'win32')[0], 'C:\\p\\.venv\\Scripts\\swarm-lsp.exe');
  });

  it('falls back to swarm-lsp on PATH', () => {
    assert.deepEqual(resolveServer(reader({}), ['/p'], files(), 'linux'), {
      command: 'swarm-lsp',
      args: ['serve'],
      source: 'default',
    });
  });

  it('prefers a path the user set over the virtualenv, relative to the workspace folder', () => {
    const resolved = resolveServer(
      reader({ 'swarm.server.path': 'tools/swarm-lsp', 'swarm.server.args': ['--x'] }),
      ['/p'],
      files('/p/.venv/bin/swarm-lsp'),
      'linux',
    );
    assert.deepEqual(resolved, { command: '/p/tools/swarm-lsp', args: ['serve', '--x'], source: 'path' });
  });

  it('prefers swarm.server.python over everything', () => {
    const resolved = resolveServer(
      reader({ 'swarm.server.python': '${workspaceFolder}/.venv/bin/python' }),
      ['/p'],
      files('/p/.venv/bin/swarm-lsp'),
      'linux',
    );
    assert.deepEqual(resolved, {
      command: '/p/.venv/bin/python',
      args: ['-m', 'swarm_lsp.cli', 'serve'],
      source: 'python',
    });
  });
});

describe('locate', () => {
  it('finds a bare name on PATH', () => {
    assert.equal(locate('swarm-lsp', '/usr/bin:/opt/x/bin', files('/opt/x/bin/swarm-lsp'), 'linux'), '/opt/x/bin/swarm-lsp');
  });

  it('reports a missing name or a wrong path as undefined (spawn would fail with ENOENT)', () => {
    assert.equal(locate('swarm-lsp', '/usr/bin', files(), 'linux'), undefined);
    assert.equal(locate('/wrong/swarm-lsp', '/usr/bin', files('/usr/bin/swarm-lsp'), 'linux'), undefined);
    assert.equal(locate('/right/swarm-lsp', undefined, files('/right/swarm-lsp'), 'linux'), '/right/swarm-lsp');
  });
});

describe('settingsTarget', () => {
  it('opens Remote settings in a remote window: user settings do not apply to swarm.server.path there', () => {
    const target = settingsTarget('ssh-remote', { globalValue: '/home/me/bin/swarm-lsp' }, 'path');
    assert.equal(target.command, 'workbench.action.openRemoteSettings');
    assert.equal(target.label, 'Open Remote Settings');
    assert.deepEqual(target.args, [{ query: 'swarm.server' }]);
  });

  it('opens the user settings in a local window', () => {
    const target = settingsTarget(undefined, {}, 'default');
    assert.equal(target.command, 'workbench.action.openSettings');
    assert.equal(target.label, 'Open User Settings');
  });

  it('opens the scope that holds the wrong value', () => {
    assert.equal(
      settingsTarget('wsl', { workspaceValue: 'x' }, 'path').command,
      'workbench.action.openWorkspaceSettings',
    );
    assert.equal(
      settingsTarget(undefined, { workspaceFolderValue: 'x', workspaceValue: 'y' }, 'path').command,
      'workbench.action.openFolderSettings',
    );
  });
});

describe('missingServerMessage', () => {
  it('says what was searched and, remotely, where the setting goes', () => {
    const message = missingServerMessage({ command: 'swarm-lsp', args: ['serve'], source: 'default' }, 'ssh-remote', 'missing');
    assert.match(message, /\.venv\/bin/);
    assert.match(message, /PATH/);
    assert.match(message, /Remote settings/);
  });

  it('names a wrong configured path', () => {
    const message = missingServerMessage({ command: '/nope/swarm-lsp', args: ['serve'], source: 'path' }, undefined, 'missing');
    assert.match(message, /"\/nope\/swarm-lsp" \(from swarm.server.path\) does not exist/);
    assert.doesNotMatch(message, /Remote/);
  });
});
