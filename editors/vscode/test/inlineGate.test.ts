import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CancellationLike, InlineRequestGate, sleep } from '../src/common/inlineGate';

/** A minimal cancellation source and token (VS Code's is not available under plain node). */
class Source implements CancellationLike {
  private listeners: (() => void)[] = [];
  cancelled = false;

  get isCancellationRequested(): boolean {
    return this.cancelled;
  }

  get token(): CancellationLike {
    return this;
  }

  onCancellationRequested = (listener: () => void): { dispose(): void } => {
    this.listeners.push(listener);
    return {
      dispose: () => {
        this.listeners = this.listeners.filter((l) => l !== listener);
      },
    };
  };

  cancel = (): void => {
    if (!this.cancelled) {
      this.cancelled = true;
      for (const listener of this.listeners.splice(0)) {
        listener();
      }
    }
  };
}

describe('InlineRequestGate', () => {
  it('waits the debounce before a request goes out', async () => {
    const gate = new InlineRequestGate(() => 40);
    const source = new Source();
    const started = performance.now();
    assert.equal(await gate.admit(source.token, source.cancel), true);
    assert.ok(performance.now() - started >= 35);
  });

  it('defaults to 150 ms, as llama.vscode waits', async () => {
    const waits: number[] = [];
    const gate = new InlineRequestGate(undefined, (ms) => {
      waits.push(ms);
      return Promise.resolve(true);
    });
    const source = new Source();
    await gate.admit(source.token, source.cancel);
    assert.deepEqual(waits, [150]);
  });

  it('sends only the last of a burst of keystrokes and cancels the ones before it at once', async () => {
    const gate = new InlineRequestGate(() => 30);
    const sources = [new Source(), new Source(), new Source()];
    const started = performance.now();
    const admitted = sources.map((s) => gate.admit(s.token, s.cancel));
    const [first, second, third] = await Promise.all(admitted);
    assert.deepEqual([first, second, third], [false, false, true]);
    assert.deepEqual(
      sources.map((s) => s.cancelled),
      [true, true, false],
    );
    assert.ok(performance.now() - started < 1000);
  });

  it('cancels a request already at the server when a newer one arrives', async () => {
    const gate = new InlineRequestGate(() => 0);
    const inFlight = new Source();
    assert.equal(await gate.admit(inFlight.token, inFlight.cancel), true);
    const next = new Source();
    const admitted = gate.admit(next.token, next.cancel);
    assert.equal(inFlight.cancelled, true); // the client sends $/cancelRequest for it
    assert.equal(await admitted, true);
  });

  it('does not cancel a request that already finished', async () => {
    const gate = new InlineRequestGate(() => 0);
    const done = new Source();
    const cancelDone = done.cancel;
    assert.equal(await gate.admit(done.token, cancelDone), true);
    gate.finished(cancelDone);
    const next = new Source();
    await gate.admit(next.token, next.cancel);
    assert.equal(done.cancelled, false);
  });

  it('drops a request VS Code cancelled while it waited', async () => {
    const gate = new InlineRequestGate(() => 5_000);
    const source = new Source();
    const started = performance.now();
    const admitted = gate.admit(source.token, source.cancel);
    setTimeout(source.cancel, 10);
    assert.equal(await admitted, false);
    assert.ok(performance.now() - started < 1000);
  });

  it('skips the debounce when the user asked explicitly', async () => {
    const gate = new InlineRequestGate(() => 5_000);
    const source = new Source();
    const started = performance.now();
    assert.equal(await gate.admit(source.token, source.cancel, true), true);
    assert.ok(performance.now() - started < 1000);
  });
});

describe('sleep', () => {
  it('resolves false at once for a cancelled token', async () => {
    const source = new Source();
    source.cancel();
    assert.equal(await sleep(5_000, source.token), false);
  });
});
