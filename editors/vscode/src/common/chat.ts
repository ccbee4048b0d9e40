/**
 * Chat stream assembly and history. Pure, so it is unit-tested without VS Code.
 *
 * The server streams a chat answer as `$/progress` on the request's workDoneToken:
 * `begin`, then one `report` per chunk whose `message` is the new text (a delta the client
 * appends), then `end`. The request's result carries the whole text, which wins over the
 * assembled deltas if they differ (a dropped notification must not leave a wrong answer).
 */
import type { AskResult, ChatResult, ChatTurn, WorkDoneProgressValue } from './protocol';

export type StreamPhase = 'idle' | 'streaming' | 'ended' | 'done' | 'failed';

export class ChatStream {
  private chunks: string[] = [];
  private phaseValue: StreamPhase = 'idle';
  private finalText: string | undefined;
  private errorText: string | undefined;

  get phase(): StreamPhase {
    return this.phaseValue;
  }

  /** Text so far: the final result once known, else the deltas joined. */
  get text(): string {
    return this.finalText ?? this.chunks.join('');
  }

  get error(): string | undefined {
    return this.errorText;
  }

  /**
   * Feed one `$/progress` value; returns the delta to show now ('' when nothing new). Reports
   * after the result has arrived are ignored.
   */
  progress(value: WorkDoneProgressValue | undefined): string {
    if (value === undefined || this.phaseValue === 'done' || this.phaseValue === 'failed') {
      return '';
    }
    switch (value.kind) {
      case 'begin':
        this.phaseValue = 'streaming';
        return '';
      case 'report': {
        this.phaseValue = 'streaming';
        const delta = typeof value.message === 'string' ? value.message : '';
        if (delta !== '') {
          this.chunks.push(delta);
        }
        return delta;
      }
      case 'end':
        this.phaseValue = 'ended';
        return '';
    }
  }

  /** The request returned: its text is authoritative. */
  finish(text: string): void {
    this.finalText = text;
    this.phaseValue = 'done';
  }

  fail(message: string): void {
    this.errorText = message;
    this.phaseValue = 'failed';
  }
}

/** Pull the text out of a `swarm/chat` (or `swarm.chat`) result; tolerant of a bare string. */
export function chatResultText(result: unknown): string {
  if (typeof result === 'string') {
    return result;
  }
  if (typeof result === 'object' && result !== null) {
    const value = result as Partial<ChatResult> & Record<string, unknown>;
    for (const field of ['text', 'answer', 'message', 'markdown'] as const) {
      const candidate = value[field];
      if (typeof candidate === 'string') {
        return candidate;
      }
    }
  }
  return '';
}

/** The conversation in one chat view, bounded so prompts stay small for a tiny model. */
export class ChatSession {
  private turns: ChatTurn[] = [];

  constructor(private readonly maxTurns = 12) {}

  /** History to send with the next prompt (previous turns only). */
  history(): ChatTurn[] {
    return this.turns.map((turn) => ({ ...turn }));
  }

  /** Record a finished exchange. */
  add(prompt: string, answer: string): void {
    this.turns.push({ role: 'user', content: prompt }, { role: 'assistant', content: answer });
    if (this.turns.length > this.maxTurns) {
      this.turns = this.turns.slice(this.turns.length - this.maxTurns);
    }
  }

  clear(): void {
    this.turns = [];
  }

  get length(): number {
    return this.turns.length;
  }
}

/** `swarm.ask` result as markdown: the answer, then its citations as a list. */
export function formatAnswer(result: unknown): string {
  if (typeof result !== 'object' || result === null) {
    return chatResultText(result);
  }
  const value = result as Partial<AskResult>;
  const answer = typeof value.answer === 'string' ? value.answer : chatResultText(result);
  const citations = (Array.isArray(value.citations) ? value.citations : []).filter(
    (c) => typeof (c as Partial<typeof c> | null)?.path === 'string',
  );
  // The server may already list its sources in the answer; then they are not repeated.
  if (citations.length === 0 || citations.every((c) => answer.includes(c.path))) {
    return answer;
  }
  const lines = citations.map((c) =>
    typeof c.line === 'number' ? `- \`${c.path}:${c.line}\`` : `- \`${c.path}\``,
  );
  return `${answer}\n\nSources:\n${lines.join('\n')}`;
}

/**
 * A readable summary of what a code-action command returned, or undefined when it returned
 * nothing worth showing (for example, the edit was applied through workspace/applyEdit).
 */
export function describeCommandResult(result: unknown): string | undefined {
  if (result === null || result === undefined) {
    return undefined;
  }
  if (typeof result === 'string') {
    return result === '' ? undefined : result;
  }
  if (typeof result === 'number' || typeof result === 'boolean') {
    return String(result);
  }
  if (typeof result !== 'object') {
    return undefined;
  }
  const value = result as Record<string, unknown>;
  if (typeof value.answer === 'string') {
    return formatAnswer(result);
  }
  const text = chatResultText(result);
  if (text !== '') {
    return text;
  }
  if (typeof value.summary === 'string') {
    return value.summary;
  }
  return undefined;
}
