/**
 * Messages between the chat webview (media/chat.js) and the extension. Pure; the webview's
 * messages are checked before use because a webview is untrusted input.
 */

/** Webview → extension. */
export type FromWebview =
  | { type: 'ready' }
  | { type: 'send'; prompt: string }
  | { type: 'cancel' }
  | { type: 'clear' };

/** Extension → webview. */
export type ToWebview =
  | { type: 'user'; id: string; text: string }
  | { type: 'start'; id: string; title?: string }
  | { type: 'delta'; id: string; text: string }
  | { type: 'done'; id: string; text: string; detail?: string }
  | { type: 'error'; id: string; message: string }
  | { type: 'busy'; busy: boolean }
  | { type: 'clear' };

export const MAX_PROMPT_CHARS = 32_000;

export function parseWebviewMessage(raw: unknown): FromWebview | undefined {
  if (typeof raw !== 'object' || raw === null) {
    return undefined;
  }
  const value = raw as Record<string, unknown>;
  switch (value.type) {
    case 'ready':
    case 'cancel':
    case 'clear':
      return { type: value.type };
    case 'send': {
      if (typeof value.prompt !== 'string') {
        return undefined;
      }
      const prompt = value.prompt.trim().slice(0, MAX_PROMPT_CHARS);
      return prompt === '' ? undefined : { type: 'send', prompt };
    }
    default:
      return undefined;
  }
}

/** "model · 1.2 s" under an answer. */
export function answerDetail(model: unknown, elapsedMs: unknown): string | undefined {
  const parts: string[] = [];
  if (typeof model === 'string' && model !== '') {
    parts.push(model);
  }
  if (typeof elapsedMs === 'number' && Number.isFinite(elapsedMs) && elapsedMs >= 0) {
    parts.push(elapsedMs < 1000 ? `${Math.round(elapsedMs)} ms` : `${(elapsedMs / 1000).toFixed(1)} s`);
  }
  return parts.length > 0 ? parts.join(' · ') : undefined;
}
