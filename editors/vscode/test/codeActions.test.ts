import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CODE_COMMANDS, commandArguments, effectiveRange } from '../src/common/codeActions';

const URI = 'file:///work/shapes/geometry.py';
const SELECTION = { start: { line: 2, character: 4 }, end: { line: 5, character: 0 } };
const CURSOR = { start: { line: 7, character: 3 }, end: { line: 7, character: 3 } };
const lineLength = (): number => 20;

function command(id: string) {
  const found = CODE_COMMANDS.find((c) => c.id === id);
  assert.ok(found, id);
  return found;
}

describe('commandArguments', () => {
  it('refactor sends [uri, range, instruction]', () => {
    assert.deepEqual(
      commandArguments(command('swarmLsp.refactor'), { uri: URI, selection: SELECTION }, lineLength, 'inline it'),
      [URI, SELECTION, 'inline it'],
    );
  });

  it('explain, review and generate tests send [uri, range]', () => {
    for (const id of ['swarmLsp.explain', 'swarmLsp.review', 'swarmLsp.generateTests']) {
      assert.deepEqual(commandArguments(command(id), { uri: URI, selection: SELECTION }, lineLength), [URI, SELECTION]);
    }
  });

  it('a bare cursor means its whole line', () => {
    assert.deepEqual(commandArguments(command('swarmLsp.explain'), { uri: URI, selection: CURSOR }, lineLength), [
      URI,
      { start: { line: 7, character: 0 }, end: { line: 7, character: 20 } },
    ]);
    assert.deepEqual(effectiveRange(SELECTION, lineLength), SELECTION);
  });

  it('research sends [uri, position]', () => {
    assert.deepEqual(commandArguments(command('swarmLsp.research'), { uri: URI, selection: CURSOR }, lineLength), [
      URI,
      { line: 7, character: 3 },
    ]);
  });

  it('run tests sends [uri] or [] without an editor', () => {
    assert.deepEqual(commandArguments(command('swarmLsp.runTests'), { uri: URI, selection: CURSOR }, lineLength), [URI]);
    assert.deepEqual(commandArguments(command('swarmLsp.runTests'), undefined, lineLength), []);
  });

  it('range commands need an editor', () => {
    assert.throws(() => commandArguments(command('swarmLsp.review'), undefined, lineLength), /needs an open editor/);
  });

  it('covers every code action the server offers', () => {
    assert.deepEqual(
      CODE_COMMANDS.map((c) => c.server).sort(),
      ['swarm.explain', 'swarm.generateTests', 'swarm.refactor', 'swarm.research', 'swarm.review', 'swarm.runTests'],
    );
  });
});
