import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { isStartedTask } from '../src/common/protocol';
import { formatClientState, formatStatus, normalizeStatus } from '../src/common/status';

/** The server's own shapes (tests/fixtures/protocol; the Python and Lua tests read them too). */
function serverFixture(name: string): unknown {
  const repo = path.resolve(__dirname, '..', '..', '..', '..');
  return JSON.parse(readFileSync(path.join(repo, 'tests', 'fixtures', 'protocol', name), 'utf8'));
}

const READY = {
  state: 'ready',
  coordinator: '127.0.0.1:50051',
  machines: [
    { id: 'w1', host: '127.0.0.1', roles: ['refactor', 'research'], load: 1, capacity: 2, alive: true },
    { id: 'w2', host: '10.0.0.7', roles: ['test'], load: 0, capacity: 1, alive: false },
  ],
  queueDepth: 3,
  running: 1,
  recent: [{ id: 't-1', type: 'refactor', state: 'done' }],
};

describe('normalizeStatus', () => {
  it('keeps a well-formed status', () => {
    const status = normalizeStatus(READY);
    assert.equal(status.state, 'ready');
    assert.equal(status.machines?.length, 2);
    assert.equal(status.queueDepth, 3);
  });

  it('reads the dispatch client shape too', () => {
    const status = normalizeStatus({
      coordinator: '127.0.0.1:40000',
      machines: [
        { workerId: 'w-1', name: 'thinker', host: '127.0.0.1', roles: ['refactor'], capacity: 2, running: 1, load: 0.5, draining: false },
        { workerId: 'w-2', name: 'tester', host: '127.0.0.1', roles: ['test'], capacity: 1, running: 0, load: 0 },
      ],
      queueDepth: 4,
      recent: [{ taskId: 't-9', type: 'test', state: 'SUCCEEDED', worker: 'w-2' }],
    });
    assert.equal(status.state, 'ready');
    assert.deepEqual(status.machines?.map((m) => [m.id, m.load, m.capacity, m.alive]), [
      ['thinker', 1, 2, true],
      ['tester', 0, 1, true],
    ]);
    assert.equal(status.running, 1);
    assert.deepEqual(status.recent, [{ id: 't-9', type: 'test', state: 'SUCCEEDED' }]);
    assert.equal(formatStatus(status).text, '$(pulse) Swarm 2/2 $(sync~spin) 1 $(list-ordered) 4');
    assert.equal(normalizeStatus({ coordinator: '127.0.0.1:1', machines: [] }).state, 'degraded');
  });

  it('lists the mesh peers and who owns each task in flight', () => {
    const status = normalizeStatus({
      ...READY,
      peers: [
        { address: '10.0.0.1:50051', id: 'p1', roles: [], rttMs: 3.26, current: true, running: 2, capacity: 4 },
        { address: '10.0.0.3:50051', id: 'p3', roles: ['echo'], rttMs: 1, current: false, error: 'refused' },
        { id: 'no address' },
      ],
      tasks: [{ id: 't-7', type: 'research', state: 'RUNNING', owner: '10.0.0.1:50051', worker: 'p2' }],
    });
    assert.deepEqual(status.peers?.map((p) => [p.id, p.current]), [
      ['p1', true],
      ['p3', false],
    ]);
    const tooltip = formatStatus(status).tooltip;
    assert.match(tooltip, /Mesh peers \(2\):/);
    assert.match(tooltip, /- p1 `10\.0\.0\.1:50051` \(in use\): no roles, load 2\/4, 3\\\.3 ms/);
    assert.match(tooltip, /- p3 `10\.0\.0\.3:50051`: echo, unreachable: refused/);
    assert.match(tooltip, /research t\\-7: RUNNING on p2, owned by `10\.0\.0\.1:50051`/);
    assert.doesNotMatch(formatStatus(normalizeStatus(READY)).tooltip, /Mesh peers|In flight/);
  });

  it('turns garbage into down instead of throwing', () => {
    assert.deepEqual(normalizeStatus(null), { state: 'down' });
    const status = normalizeStatus({ state: 'weird', machines: 'no', queueDepth: -4 });
    assert.equal(status.state, 'down');
    assert.deepEqual(status.machines, []);
    assert.equal(status.queueDepth, 0);
  });
});

describe('formatStatus', () => {
  it('shows alive machines, running and queued tasks', () => {
    const view = formatStatus(normalizeStatus(READY));
    assert.equal(view.text, '$(pulse) Swarm 1/2 $(sync~spin) 1 $(list-ordered) 3');
    assert.equal(view.severity, 'ok');
    assert.match(view.tooltip, /Coordinator: `127\.0\.0\.1:50051`/);
    assert.match(view.tooltip, /w1 on 127\\\.0\\\.0\\\.1: refactor, research, load 1\/2, alive/);
    assert.match(view.tooltip, /w2 .* lost/);
    assert.match(view.tooltip, /refactor t\\-1: done/);
  });

  it('marks degraded and down', () => {
    assert.equal(formatStatus({ state: 'degraded', machines: [] }).severity, 'warning');
    const down = formatStatus({ state: 'down' });
    assert.equal(down.severity, 'error');
    assert.equal(down.text, '$(error) Swarm');
    assert.match(down.tooltip, /Coordinator: none/);
  });

  it('shows a spinner while starting', () => {
    assert.equal(formatStatus({ state: 'starting' }).text, '$(loading~spin) Swarm');
  });

  it('escapes markdown in machine names', () => {
    const view = formatStatus(
      normalizeStatus({ state: 'ready', machines: [{ id: '[x](http://a)', host: 'h', roles: [], load: 0, capacity: 0, alive: true }] }),
    );
    assert.doesNotMatch(view.tooltip, /\[x\]\(http/);
  });
});

describe('server fixtures', () => {
  it('reads the status the server sends', () => {
    const status = normalizeStatus(serverFixture('status.json'));
    assert.equal(status.state, 'ready');
    assert.equal(formatStatus(status).text, '$(pulse) Swarm 1/2 $(sync~spin) 3 $(list-ordered) 1');
  });

  it('recognises a started command', () => {
    const shapes = serverFixture('result.json') as Record<string, unknown>;
    assert.equal(isStartedTask(shapes.started), true);
    assert.equal(isStartedTask(shapes.finished), false);
  });
});

describe('formatClientState', () => {
  it('covers every client state', () => {
    assert.equal(formatClientState('failed').severity, 'error');
    assert.equal(formatClientState('stopped').severity, 'warning');
    assert.equal(formatClientState('starting').severity, 'busy');
    assert.equal(formatClientState('running').text, '$(pulse) Swarm');
  });
});
