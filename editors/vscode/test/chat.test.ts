import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChatSession, ChatStream, chatResultText, describeCommandResult, formatAnswer } from '../src/common/chat';
import { answerDetail, parseWebviewMessage } from '../src/common/chatMessages';

describe('ChatStream', () => {
  it('appends report deltas between begin and end', () => {
    const stream = new ChatStream();
    assert.equal(stream.progress({ kind: 'begin', title: 'Swarm chat' }), '');
    assert.equal(stream.phase, 'streaming');
    assert.equal(stream.progress({ kind: 'report', message: 'def ' }), 'def ');
    assert.equal(stream.progress({ kind: 'report', message: 'area' }), 'area');
    assert.equal(stream.progress({ kind: 'report' }), '');
    assert.equal(stream.text, 'def area');
    stream.progress({ kind: 'end' });
    assert.equal(stream.phase, 'ended');
    stream.finish('def area');
    assert.equal(stream.phase, 'done');
    assert.equal(stream.text, 'def area');
  });

  it('lets the final result win over missed or partial deltas', () => {
    const stream = new ChatStream();
    stream.progress({ kind: 'report', message: 'par' });
    stream.finish('partial answer');
    assert.equal(stream.text, 'partial answer');
    assert.equal(stream.progress({ kind: 'report', message: 'late' }), '');
    assert.equal(stream.text, 'partial answer');
  });

  it('works when the result arrives without any progress', () => {
    const stream = new ChatStream();
    stream.finish('whole');
    assert.equal(stream.text, 'whole');
  });

  it('records failures', () => {
    const stream = new ChatStream();
    stream.progress({ kind: 'report', message: 'x' });
    stream.fail('boom');
    assert.equal(stream.phase, 'failed');
    assert.equal(stream.error, 'boom');
  });
});

describe('chatResultText', () => {
  it('reads text from the chat result, or a bare string', () => {
    assert.equal(chatResultText({ text: 'hi', model: 'm', elapsedMs: 3 }), 'hi');
    assert.equal(chatResultText('plain'), 'plain');
    assert.equal(chatResultText({ answer: 'a' }), 'a');
    assert.equal(chatResultText(undefined), '');
  });
});

describe('ChatSession', () => {
  it('keeps the recent turns as history', () => {
    const session = new ChatSession(4);
    assert.deepEqual(session.history(), []);
    session.add('q1', 'a1');
    session.add('q2', 'a2');
    session.add('q3', 'a3');
    assert.deepEqual(session.history(), [
      { role: 'user', content: 'q2' },
      { role: 'assistant', content: 'a2' },
      { role: 'user', content: 'q3' },
      { role: 'assistant', content: 'a3' },
    ]);
    session.clear();
    assert.equal(session.length, 0);
  });

  it('hands out copies', () => {
    const session = new ChatSession();
    session.add('q', 'a');
    const history = session.history();
    history[0]!.content = 'changed';
    assert.equal(session.history()[0]!.content, 'q');
  });
});

describe('formatAnswer', () => {
  it('lists citations under the answer', () => {
    assert.equal(
      formatAnswer({ answer: 'In geometry.py.', citations: [{ path: 'shapes/geometry.py', line: 12 }, { path: 'README.md' }] }),
      'In geometry.py.\n\nSources:\n- `shapes/geometry.py:12`\n- `README.md`',
    );
    assert.equal(formatAnswer({ answer: 'No sources.', citations: [] }), 'No sources.');
    const listed = 'In it.\n\nSources:\n[1] shapes/geometry.py:14-24 `Rectangle`';
    assert.equal(formatAnswer({ answer: listed, citations: [{ path: 'shapes/geometry.py', line: 14 }] }), listed);
  });
});

describe('describeCommandResult', () => {
  it('summarises text results and ignores empty ones', () => {
    assert.equal(describeCommandResult(null), undefined);
    assert.equal(describeCommandResult(''), undefined);
    assert.equal(describeCommandResult({ applied: true }), undefined);
    assert.equal(describeCommandResult({ text: 'explained' }), 'explained');
    assert.equal(describeCommandResult({ summary: '3 passed' }), '3 passed');
    assert.match(describeCommandResult({ answer: 'a', citations: [{ path: 'p', line: 1 }] }) ?? '', /Sources/);
  });
});

describe('webview messages', () => {
  it('accepts only well-formed messages', () => {
    assert.deepEqual(parseWebviewMessage({ type: 'send', prompt: '  hi  ' }), { type: 'send', prompt: 'hi' });
    assert.equal(parseWebviewMessage({ type: 'send', prompt: '   ' }), undefined);
    assert.equal(parseWebviewMessage({ type: 'send', prompt: 3 }), undefined);
    assert.equal(parseWebviewMessage({ type: 'eval', code: 'x' }), undefined);
    assert.equal(parseWebviewMessage('ready'), undefined);
    assert.deepEqual(parseWebviewMessage({ type: 'cancel', extra: 1 }), { type: 'cancel' });
  });

  it('formats the answer footer', () => {
    assert.equal(answerDetail('smollm2', 420), 'smollm2 · 420 ms');
    assert.equal(answerDetail('smollm2', 1530), 'smollm2 · 1.5 s');
    assert.equal(answerDetail(undefined, undefined), undefined);
  });
});
