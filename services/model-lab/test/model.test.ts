import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CliUsageError, formatStatus, listVersions, parseCliArgs, runModelCli } from '../src/model-commands.js';
import { EMPTY_STATE, resolveModelUpdates } from '@pitwall/model';
import { metadataFor, withTmpDir } from '@pitwall/model/testing';

describe('model CLI arguments', () => {
  it('parses commands and flags', () => {
    assert.deepEqual(parseCliArgs(['activate', '2', '--model', 'x', '--models-dir', '/m', '--by', 'me', '--reason', 'why']), {
      command: 'activate',
      version: '2',
      model: 'x',
      modelsDir: '/m',
      by: 'me',
      reason: 'why',
      json: false,
    });
    assert.equal(parseCliArgs(['activate', 'latest']).version, 'latest');
    assert.equal(parseCliArgs(['status', '--json']).json, true);
    assert.equal(parseCliArgs([]).command, 'help');
    assert.equal(parseCliArgs(['rollback', '--help']).command, 'help');
  });
  const bad: [string[], RegExp][] = [
    [['frob'], /unknown command "frob"/],
    [['activate'], /activate needs a version/],
    [['shadow'], /shadow needs a version/],
    [['rollback', '2'], /rollback takes no version/],
    [['activate', 'v2'], /version must be a number or "latest"/],
    [['shadow', 'latest'], /version must be a number, got "latest"/],
    [['activate', '2', '3'], /unexpected arguments: 3/],
    [['status', '--nope'], /nope/],
  ];
  for (const [argv, message] of bad) {
    it(`refuses ${argv.join(' ')}`, () =>
      assert.throws(
        () => parseCliArgs(argv),
        (e: unknown) => e instanceof CliUsageError && message.test(e.message),
      ));
  }

  it('an unknown version exits 2 before any broker is contacted', async () => {
    const err: string[] = [];
    // An unroutable broker: reaching Kafka would hang or fail with exit 1, not 2.
    const code = await runModelCli(['activate', '7', '--models-dir', '/nonexistent'], { KAFKA_BROKERS: '127.0.0.1:1' }, { out: () => {}, err: (t) => err.push(t) });
    assert.equal(code, 2);
    assert.match(err.join('\n'), /version 7 of pitwall-ae cannot be served/);
  });

  it('usage errors exit 2, --help exits 0', async () => {
    const out: string[] = [];
    assert.equal(await runModelCli(['bogus'], {}, { out: () => {}, err: () => {} }), 2);
    assert.equal(await runModelCli(['--help'], {}, { out: (t) => out.push(t), err: () => {} }), 0);
    assert.match(out.join(''), /--models-dir/);
  });
});

describe('model CLI status', () => {
  it('lists versions numerically with their metadata, flags invalid ones, and shows the log state', () =>
    withTmpDir(async (dir) => {
      for (const v of ['1', '2', '10']) {
        await mkdir(path.join(dir, 'pitwall-ae', v), { recursive: true });
        await writeFile(path.join(dir, 'pitwall-ae', v, 'metadata.json'), JSON.stringify(metadataFor({ name: 'pitwall-ae', version: v, threshold: Number(v) })));
      }
      await writeFile(path.join(dir, 'pitwall-ae', '2', 'metadata.json'), '{"name":');
      const versions = await listVersions(dir, 'pitwall-ae');
      assert.deepEqual(
        versions.map((v) => [v.version, v.ok, v.threshold]),
        [
          ['1', true, 1],
          ['2', false, undefined],
          ['10', true, 10],
        ],
      );
      const state = resolveModelUpdates(
        [
          { schema: 'pitwall.model-update.v1', model: 'pitwall-ae', action: 'activate', version: '1', issued_at: 0, issued_by: 'a' },
          { schema: 'pitwall.model-update.v1', model: 'pitwall-ae', action: 'activate', version: '10', issued_at: 0, issued_by: 'b' },
        ],
        'pitwall-ae',
      );
      const text = formatStatus('pitwall-ae', dir, versions, state);
      assert.match(text, /^\s+2\s+INVALID: /m);
      assert.match(text, /active \(model.updates\): 10/);
      assert.match(text, /rollback would activate: 1/);
      assert.match(text, /latest event: activate 10 by b/);
      assert.match(formatStatus('pitwall-ae', dir, [], EMPTY_STATE), /no version directories[\s\S]*rollback would activate: nothing/);
    }));
});
