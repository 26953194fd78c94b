/**
 * Pure logic of the extension, testable without VS Code: finding the server and packing its settings.
 * Nothing here imports `vscode`; extension.ts feeds it the editor's configuration and file system.
 */
import * as path from 'node:path';

/** Server settings contributed under `diffgem.*`; mirrors diffgem_lsp/settings.py (a test checks). */
export const SERVER_SETTING_KEYS = [
  'modelPath',
  'device',
  'precision',
  'automaticSuggestions',
  'debounceMs',
  'automaticSteps',
  'invokedSteps',
  'sampler',
  'confidenceThreshold',
  'earlyStop',
  'streamDrafts',
  'diagnostics',
  'adaptiveDebounce',
  'prefill',
  'candidates',
  'promptCacheMb',
  'maxFileKb',
  'seed',
  'logLevel',
  'backend',
  'endpoint',
  'apiKeyEnv',
  'apiKeyFile',
  'remoteModel',
  'remoteFallback',
] as const;

export type ServerSettingKey = (typeof SERVER_SETTING_KEYS)[number];

/** Languages the server has grammars for (LSP language ids). */
export const LANGUAGES = ['python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact', 'go', 'rust'];

export type ServerPath =
  | { ok: true; path: string; source: 'setting' | 'workspace' | 'PATH' }
  | { ok: false; message: string };

export interface FileSystemProbe {
  isExecutable(file: string): boolean;
}

/**
 * Where diffgem-lsp is: the `diffgem.serverPath` setting, else `<folder>/.venv/bin/diffgem-lsp` in a
 * workspace folder, else `diffgem-lsp` on PATH. A configured path that is not executable is an error
 * (the user asked for it), not a silent fall-through.
 */
export function resolveServerPath(
  configured: string | undefined,
  workspaceFolders: readonly string[],
  pathEnv: string | undefined,
  fs: FileSystemProbe,
  platform: NodeJS.Platform = process.platform,
): ServerPath {
  const exe = platform === 'win32' ? 'diffgem-lsp.exe' : 'diffgem-lsp';
  const setting = (configured ?? '').trim();
  if (setting) {
    const folder = workspaceFolders[0];
    const expanded = setting.startsWith('~') && process.env.HOME ? path.join(process.env.HOME, setting.slice(1)) : setting;
    const absolute = path.isAbsolute(expanded) || !folder ? expanded : path.join(folder, expanded);
    if (fs.isExecutable(absolute)) {
      return { ok: true, path: absolute, source: 'setting' };
    }
    return {
      ok: false,
      message: `diffgem: the server path "${setting}" (setting diffgem.serverPath) does not exist or is not executable.`,
    };
  }
  const venvBin = platform === 'win32' ? path.join('.venv', 'Scripts') : path.join('.venv', 'bin');
  for (const folder of workspaceFolders) {
    const candidate = path.join(folder, venvBin, exe);
    if (fs.isExecutable(candidate)) {
      return { ok: true, path: candidate, source: 'workspace' };
    }
  }
  for (const dir of (pathEnv ?? '').split(path.delimiter)) {
    if (dir && fs.isExecutable(path.join(dir, exe))) {
      return { ok: true, path: path.join(dir, exe), source: 'PATH' };
    }
  }
  return {
    ok: false,
    message:
      'diffgem: diffgem-lsp was not found (not in diffgem.serverPath, a workspace .venv, or PATH). ' +
      'Install it (pip install diffgem-lsp) or set diffgem.serverPath.',
  };
}

/**
 * initializationOptions / didChangeConfiguration payload: every server setting the user or a default
 * gives, camelCase as the server expects. Values are passed through unchanged: the server validates
 * them and answers a bad one with a single message, so the editor does not duplicate its rules.
 */
export function packSettings(get: (key: ServerSettingKey) => unknown): Record<string, unknown> {
  const packed: Record<string, unknown> = {};
  for (const key of SERVER_SETTING_KEYS) {
    const value = get(key);
    if (value !== undefined && value !== null) {
      packed[key] = value;
    }
  }
  return packed;
}

export type WorkerState = 'starting' | 'loading' | 'ready' | 'generating' | 'error' | 'stopped';

export interface StatusView {
  text: string;
  tooltip: string;
  accessibilityLabel: string;
  isError: boolean;
}

/** Status-bar text for a worker state (from the diffgem/status notification). */
export function statusView(state: WorkerState, message = '', model = ''): StatusView {
  const icons: Record<WorkerState, string> = {
    starting: '$(loading~spin)',
    loading: '$(loading~spin)',
    ready: '$(check)',
    generating: '$(sync~spin)',
    error: '$(error)',
    stopped: '$(circle-slash)',
  };
  // Words while the user waits (a cold start takes seconds before the first suggestion): an icon alone
  // was easy to miss. Ready stays short.
  const words: Record<WorkerState, string> = {
    starting: 'diffgem: starting…',
    loading: 'diffgem: loading model…',
    ready: 'diffgem',
    generating: 'diffgem: generating…',
    error: 'diffgem: error',
    stopped: 'diffgem: stopped',
  };
  const details = [model && `model: ${model}`, message && message !== model ? message : ''].filter(Boolean);
  return {
    text: `${icons[state]} ${words[state]}`,
    tooltip: [`diffgem: ${state}`, ...details].join('\n'),
    accessibilityLabel: `diffgem ${state}`,
    isError: state === 'error',
  };
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

const PYTHON_LEVELS: Record<string, LogLevel> = {
  DEBUG: 'debug',
  INFO: 'info',
  WARNING: 'warn',
  ERROR: 'error',
  CRITICAL: 'error',
};

/**
 * One line of the server's stderr (diffgem_lsp/cli.py's format "%(asctime)s %(name)s %(levelname)s
 * %(message)s") as a log-channel entry at its own level: vscode-languageclient writes all of stderr at
 * `error`. A line without a level (a traceback's continuation) keeps the level of the line before it.
 */
export function serverLogLine(line: string, previous: LogLevel = 'info'): { level: LogLevel; text: string } {
  const match = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (\S+) (DEBUG|INFO|WARNING|ERROR|CRITICAL) (.*)$/.exec(line);
  if (!match) {
    return { level: previous, text: line };
  }
  return { level: PYTHON_LEVELS[match[2]], text: `[${match[1]}] ${match[3]}` };
}

/** "Rewrite selection…": the server's command (diffgem_lsp/instructions.py) and its action's title. */
export const INSTRUCTION_COMMAND = 'diffgem.rewriteWithInstruction';
export const INSTRUCTION_TITLE = 'Rewrite selection…';
/** The server's bound (diffgem_protocol MAX_INSTRUCTION_CHARS): longer is refused, never cut. */
export const MAX_INSTRUCTION_CHARS = 1000;

/** The input box's check of an instruction: undefined when it can be sent, else what to fix. */
export function checkInstruction(value: string): string | undefined {
  if (!value.trim()) {
    return 'Say how the code should change.';
  }
  return value.length > MAX_INSTRUCTION_CHARS ? `At most ${MAX_INSTRUCTION_CHARS} characters.` : undefined;
}

/** The target of a "Rewrite selection…" command still without its instruction ({uri, range, version}),
 * or undefined for any other command (or one that already carries an instruction). */
export function instructionTarget(command: string, args: unknown[]): Record<string, unknown> | undefined {
  const target = args[0];
  if (command !== INSTRUCTION_COMMAND || typeof target !== 'object' || target === null) {
    return undefined;
  }
  return 'instruction' in target ? undefined : (target as Record<string, unknown>);
}

/** A resolved "Rewrite selection" without an edit: the server's reason, the same words in every editor. */
export function rewriteOutcome(reason: string | undefined): string {
  return `diffgem: ${reason ?? 'the model kept the selection as it is'}`;
}

/** The server exits at start when it never got as far as answering initialize. */
export class RestartPolicy {
  private crashes: number[] = [];
  constructor(
    private readonly maxRestarts = 3,
    private readonly windowMs = 180_000,
  ) {}

  /** Record a crash at `now`; true when the client may restart the server once more. */
  shouldRestart(everRunning: boolean, now: number): boolean {
    if (!everRunning) {
      return false;
    }
    this.crashes = this.crashes.filter((t) => now - t < this.windowMs);
    this.crashes.push(now);
    return this.crashes.length <= this.maxRestarts;
  }
}
