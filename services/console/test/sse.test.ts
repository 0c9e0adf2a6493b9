import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEventLog, formatSse, sseComment } from '../src/sse.js';

test('formatSse', () => {
  const cases: [Parameters<typeof formatSse>[0], string][] = [
    [{ data: 'hi' }, 'data: hi\n\n'],
    [{ event: 'incident', id: 7, data: { a: 1 } }, 'id: 7\nevent: incident\ndata: {"a":1}\n\n'],
    [{ data: 'two\nlines' }, 'data: two\ndata: lines\n\n'],
    [{ data: 'crlf\r\nand\rcr' }, 'data: crlf\ndata: and\ndata: cr\n\n'],
    [{ event: 'x\ny', id: 'a\nb', data: '' }, 'id: ab\nevent: xy\ndata: \n\n'],
    [{ retry: 3000, event: 'hello', data: { user: 'alice' } }, 'retry: 3000\nevent: hello\ndata: {"user":"alice"}\n\n'],
  ];
  for (const [e, expected] of cases) assert.equal(formatSse(e), expected, JSON.stringify(e));
  // JSON never carries a raw newline, so an object is always one data line.
  assert.equal(formatSse({ data: { note: 'a\nb' } }), 'data: {"note":"a\\nb"}\n\n');
});

test('sseComment is a comment line', () => {
  assert.equal(sseComment('heartbeat 1'), ': heartbeat 1\n\n');
  assert.equal(sseComment('a\nb'), ': a b\n\n');
});

test('event log replays what a reconnecting client missed, or asks for a snapshot', () => {
  const log = createEventLog<number>(3);
  const first = log.append('incident', 1);
  assert.equal(log.since(first.id)?.length, 0, 'nothing missed');
  const second = log.append('incident', 2);
  log.append('incident', 3);
  assert.deepEqual(
    log.since(first.id)?.map((e) => e.data),
    [2, 3],
  );
  assert.deepEqual(
    log.since(second.id)?.map((e) => e.data),
    [3],
  );
  assert.equal(log.lastId(), `${log.epoch}-3`);
  log.append('incident', 4);
  log.append('incident', 5); // capacity 3: 1 and 2 are gone
  assert.equal(log.since(first.id), undefined, 'older than the buffer: snapshot');
  assert.deepEqual(
    log.since(second.id)?.map((e) => e.data),
    [3, 4, 5],
  );
  for (const bad of [undefined, '', 'garbage', 'zzz-1', `${log.epoch}-99`]) assert.equal(log.since(bad), undefined, String(bad));
});
