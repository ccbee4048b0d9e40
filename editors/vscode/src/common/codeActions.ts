/**
 * Editor commands for the server's code actions: which server command each runs and with what
 * arguments. Pure (positions are plain objects), so the argument shapes are unit-tested against
 * the server contract without VS Code.
 */
import { type Position, type Range, ServerCommands } from './protocol';

/** What the command needs from the editor. */
export type Target = 'range' | 'position' | 'file';

/** Where the result goes: the chat view, or nowhere (edits and diagnostics arrive by LSP). */
export type Output = 'chat' | 'none';

export interface CodeCommand {
  /** VS Code command id (distinct from the server's ids, which the client registers itself). */
  readonly id: string;
  readonly server: string;
  readonly title: string;
  readonly target: Target;
  readonly output: Output;
  /** Ask the user for an instruction first. */
  readonly instruction?: boolean;
}

export const CODE_COMMANDS: readonly CodeCommand[] = [
  {
    id: 'swarmLsp.refactor',
    server: ServerCommands.refactor,
    title: 'Refactor',
    target: 'range',
    output: 'none',
    instruction: true,
  },
  { id: 'swarmLsp.explain', server: ServerCommands.explain, title: 'Explain', target: 'range', output: 'chat' },
  { id: 'swarmLsp.review', server: ServerCommands.review, title: 'Review', target: 'range', output: 'chat' },
  {
    id: 'swarmLsp.generateTests',
    server: ServerCommands.generateTests,
    title: 'Generate tests',
    target: 'range',
    output: 'none',
  },
  {
    id: 'swarmLsp.research',
    server: ServerCommands.research,
    title: 'Research this symbol',
    target: 'position',
    output: 'chat',
  },
  { id: 'swarmLsp.runTests', server: ServerCommands.runTests, title: 'Run tests', target: 'file', output: 'none' },
];

/** Where the command was invoked. */
export interface EditorTarget {
  uri: string;
  selection: Range;
}

function isEmpty(range: Range): boolean {
  return range.start.line === range.end.line && range.start.character === range.end.character;
}

/**
 * The range a range command works on: the selection, or the whole cursor line when nothing is
 * selected (so "Explain" on a bare cursor explains that line rather than nothing).
 */
export function effectiveRange(selection: Range, lineLength: (line: number) => number): Range {
  if (!isEmpty(selection)) {
    return selection;
  }
  const line = selection.start.line;
  return { start: { line, character: 0 }, end: { line, character: lineLength(line) } };
}

/** Arguments for `workspace/executeCommand`, exactly as the server's contract lists them. */
export function commandArguments(
  command: CodeCommand,
  target: EditorTarget | undefined,
  lineLength: (line: number) => number,
  instruction?: string,
): unknown[] {
  if (command.target === 'file') {
    return target ? [target.uri] : [];
  }
  if (!target) {
    throw new Error(`${command.title} needs an open editor`);
  }
  if (command.target === 'position') {
    const position: Position = { ...target.selection.start };
    return [target.uri, position];
  }
  const range = effectiveRange(target.selection, lineLength);
  return command.instruction ? [target.uri, range, instruction ?? ''] : [target.uri, range];
}
