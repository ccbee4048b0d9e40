/**
 * When an inline (ghost text) request reaches the server: after the user paused for the debounce
 * (llama.vscode waits 150 ms), and never once a newer keystroke superseded it. A new request
 * cancels the one before it, whether that one is still waiting here or already at the server
 * (the language client turns the cancel into `$/cancelRequest`).
 *
 * Pure (no `vscode` import; timers come in as a function), so it is unit-tested under plain node.
 */

/** The part of a cancellation token the gate needs (VS Code's and vscode-jsonrpc's fit). */
export interface CancellationLike {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): { dispose(): void };
}

export const DEFAULT_DEBOUNCE_MS = 150;

/** Wait `ms`; resolves false early when `token` is cancelled. */
export type Sleep = (ms: number, token: CancellationLike) => Promise<boolean>;

export const sleep: Sleep = (ms, token) =>
  new Promise<boolean>((resolve) => {
    if (token.isCancellationRequested) {
      resolve(false);
      return;
    }
    const subscription = token.onCancellationRequested(() => {
      clearTimeout(timer);
      subscription.dispose();
      resolve(false);
    });
    const timer = setTimeout(() => {
      subscription.dispose();
      resolve(!token.isCancellationRequested);
    }, ms);
  });

export class InlineRequestGate {
  private latest = 0;
  private cancelPrevious: (() => void) | undefined;

  /**
   * @param debounceMs read on every request, so a settings change applies at once
   * @param wait the timer (tests pass their own)
   */
  constructor(
    private readonly debounceMs: () => number = () => DEFAULT_DEBOUNCE_MS,
    private readonly wait: Sleep = sleep,
  ) {}

  /**
   * Admit one request: cancels the previous request (through the `cancel` it was admitted
   * with), waits out the debounce unless `explicit` (the user asked, e.g. Alt+\), and says
   * whether this request should still go to the server. `cancel` is called if a newer request
   * supersedes this one later, while it waits or while the server works on it.
   */
  async admit(token: CancellationLike, cancel: () => void, explicit = false): Promise<boolean> {
    this.latest += 1;
    const id = this.latest;
    const previous = this.cancelPrevious;
    this.cancelPrevious = cancel;
    previous?.();
    const delay = explicit ? 0 : Math.max(0, this.debounceMs());
    if (delay > 0 && !(await this.wait(delay, token))) {
      return false;
    }
    return id === this.latest && !token.isCancellationRequested;
  }

  /** The request admitted with `cancel` finished: nothing is left to cancel for it. */
  finished(cancel: () => void): void {
    if (this.cancelPrevious === cancel) {
      this.cancelPrevious = undefined;
    }
  }
}
