// Unit tests of the extension's own logic (no VS Code): server path, settings packing, status, restarts.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  RestartPolicy,
  SERVER_SETTING_KEYS,
  packSettings,
  resolveServerPath,
  INSTRUCTION_COMMAND,
  checkInstruction,
  instructionTarget,
  rewriteOutcome,
  serverLogLine,
  statusView,
} from '../src/config';

const probe = (existing: string[]) => ({ isExecutable: (file: string) => existing.includes(file) });

describe('resolveServerPath', () => {
  it('prefers the diffgem.serverPath setting', () => {
    const found = resolveServerPath('/opt/x/diffgem-lsp', ['/ws'], '/usr/bin', probe(['/opt/x/diffgem-lsp', '/ws/.venv/bin/diffgem-lsp']), 'linux');
    assert.deepEqual(found, { ok: true, path: '/opt/x/diffgem-lsp', source: 'setting' });
  });
  it('resolves a relative setting against the first workspace folder', () => {
    const found = resolveServerPath('bin/diffgem-lsp', ['/ws'], '', probe(['/ws/bin/diffgem-lsp']), 'linux');
    assert.deepEqual(found, { ok: true, path: '/ws/bin/diffgem-lsp', source: 'setting' });
  });
  it('reports a wrong setting instead of falling through', () => {
    const found = resolveServerPath('/nope/diffgem-lsp', ['/ws'], '/usr/bin', probe(['/usr/bin/diffgem-lsp']), 'linux');
    assert.equal(found.ok, false);
    assert.match(found.ok ? '' : found.message, /\/nope\/diffgem-lsp.*diffgem\.serverPath/);
  });
  it('finds the workspace .venv before PATH', () => {
    const found = resolveServerPath('', ['/a', '/b'], '/usr/bin', probe(['/b/.venv/bin/diffgem-lsp', '/usr/bin/diffgem-lsp']), 'linux');
    assert.deepEqual(found, { ok: true, path: '/b/.venv/bin/diffgem-lsp', source: 'workspace' });
  });
  it('falls back to PATH', () => {
    const found = resolveServerPath(undefined, ['/ws'], ['/x', '/usr/local/bin'].join(path.delimiter), probe(['/usr/local/bin/diffgem-lsp']), 'linux');
    assert.deepEqual(found, { ok: true, path: '/usr/local/bin/diffgem-lsp', source: 'PATH' });
  });
  it('says how to fix it when the server is nowhere', () => {
    const found = resolveServerPath('', [], '/usr/bin', probe([]), 'linux');
    assert.equal(found.ok, false);
    assert.match(found.ok ? '' : found.message, /diffgem\.serverPath/);
  });
});

describe('packSettings', () => {
  it('packs every server setting that has a value, camelCase', () => {
    const values: Record<string, unknown> = { invokedSteps: 12, automaticSuggestions: false, modelPath: '' };
    assert.deepEqual(packSettings((key) => values[key]), values);
  });
  it('passes bad values through for the server to report', () => {
    assert.deepEqual(packSettings((key) => (key === 'device' ? 'tpu' : undefined)), { device: 'tpu' });
  });
});

describe('package.json', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
    contributes: { configuration: { properties: Record<string, { type: string; default: unknown; description?: string; markdownDescription?: string }> }; commands: { command: string }[] };
  };
  const properties = pkg.contributes.configuration.properties;
  it('contributes each server setting with a type, default and description', () => {
    for (const key of SERVER_SETTING_KEYS) {
      const property = properties[`diffgem.${key}`];
      assert.ok(property, `diffgem.${key} missing`);
      assert.ok(property.type && property.default !== undefined && (property.description || property.markdownDescription));
    }
    assert.deepEqual(Object.keys(properties).sort(), ['diffgem.serverPath', ...SERVER_SETTING_KEYS.map((k) => `diffgem.${k}`)].sort());
  });
  it('contributes the commands', () => {
    const commands = pkg.contributes.commands.map((c) => c.command);
    for (const id of ['diffgem.restartWorker', 'diffgem.toggleAutomatic', 'diffgem.showLog', 'diffgem.rewriteSelection']) {
      assert.ok(commands.includes(id), id);
    }
  });
});

describe('statusView and RestartPolicy', () => {
  it('labels every state for the status bar', () => {
    assert.equal(statusView('ready', '', 'embedded').accessibilityLabel, 'diffgem ready');
    assert.ok(statusView('error', 'boom').isError);
    assert.match(statusView('loading', 'loading model').tooltip, /loading model/);
  });
  it('says in words when the user is waiting', () => {
    assert.equal(statusView('loading').text, '$(loading~spin) diffgem: loading model…');
    assert.equal(statusView('generating').text, '$(sync~spin) diffgem: generating…');
    assert.equal(statusView('ready').text, '$(check) diffgem');
  });
  it('never restarts a server that exited at start', () => {
    assert.equal(new RestartPolicy().shouldRestart(false, 0), false);
  });
  it('restarts a running server a few times, then stops', () => {
    const policy = new RestartPolicy(2, 1000);
    assert.deepEqual([0, 1, 2].map((t) => policy.shouldRestart(true, t)), [true, true, false]);
    assert.equal(policy.shouldRestart(true, 5000), true);
  });
});

describe('serverLogLine and rewriteOutcome', () => {
  it('maps the server log level instead of tagging all of stderr as error', () => {
    assert.deepEqual(serverLogLine('2026-11-30 23:46:18,538 diffgem.worker_client INFO worker started pid=1'), {
      level: 'info',
      text: '[diffgem.worker_client] worker started pid=1',
    });
    assert.equal(serverLogLine('2026-11-30 23:46:18,538 diffgem.x WARNING slow', 'info').level, 'warn');
    assert.equal(serverLogLine('2026-11-30 23:46:18,538 diffgem.x ERROR boom').level, 'error');
    assert.equal(serverLogLine('2026-11-30 23:46:18,538 diffgem.x DEBUG detail').level, 'debug');
  });
  it('keeps a traceback line at the level of the line before it', () => {
    assert.deepEqual(serverLogLine('  File "x.py", line 1', 'error'), { level: 'error', text: '  File "x.py", line 1' });
  });
  it('words a rewrite without an edit like every other editor', () => {
    assert.equal(rewriteOutcome("the model's rewrite would not parse: dropped"), "diffgem: the model's rewrite would not parse: dropped");
    assert.equal(rewriteOutcome(undefined), 'diffgem: the model kept the selection as it is');
  });
});

describe('Rewrite selection… (instructions)', () => {
  it('asks again for a blank or too long instruction, and accepts a sentence', () => {
    assert.equal(checkInstruction('use a list comprehension'), undefined);
    assert.match(checkInstruction('   ') ?? '', /Say how/);
    assert.match(checkInstruction('x'.repeat(1001)) ?? '', /At most 1000/);
  });
  it('prompts only for the server command that still lacks its instruction', () => {
    const target = { uri: 'file:///a.py', range: {}, version: 3 };
    assert.deepEqual(instructionTarget(INSTRUCTION_COMMAND, [target]), target);
    assert.equal(instructionTarget(INSTRUCTION_COMMAND, [{ ...target, instruction: 'x' }]), undefined);
    assert.equal(instructionTarget('diffgem.applyRewrite', [target]), undefined);
    assert.equal(instructionTarget(INSTRUCTION_COMMAND, []), undefined);
  });
});
