import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createCounters } from '@pitwall/common';
import { incident } from '@pitwall/common/testing';
import { createLive, type StreamRequest } from '../src/live.js';
import { METRICS } from '../src/metrics.js';
import type { Session } from '../src/session.js';
import { createFleetView, createIncidentStore } from '../src/state.js';

/** A stream's request and response, with what was written as text; ending it closes the request, as node does. */
function fakeStream(session: Session) {
  const req = Object.assign(new EventEmitter(), { headers: {} }) as unknown as IncomingMessage;
  const out = { status: 0, text: '', ended: false };
  const res = {
    writeHead: (status: number) => void (out.status = status),
    write: (t: string) => void (out.text += t),
    end: () => {
      out.ended = true;
      req.emit('close');
    },
  } as unknown as ServerResponse;
  const request: StreamRequest = { req, res, url: new URL('http://console.invalid/api/stream'), principal: { session, role: 'viewer' } };
  return { request, out };
}

test('live view: streams wait for the rebuild, get a snapshot, then changes; revoked ones end', async () => {
  const incidents = createIncidentStore();
  const fleet = createFleetView(incidents);
  const counters = createCounters([METRICS.sseConnections]);
  const live = createLive({ now: () => 1_000, counters, fleet, listIncidents: () => incidents.list(1_000, 0, 10), heartbeatMs: 60_000 });
  const alice: Session = { user: 'alice', sid: 'a', iat: 0, exp: 1_000_000 };
  const vic: Session = { user: 'vic', sid: 'v', iat: 0, exp: 1_000_000 };
  try {
    live.broadcast('incident', { before: 'start' });
    const a = fakeStream(alice);
    const opened = live.stream(a.request);
    await new Promise((r) => setImmediate(r));
    assert.equal(a.out.status, 0, 'nothing sent before the rebuild');
    const first = incident({ incident_id: 'inc-1' });
    incidents.apply(first);
    live.start();
    await opened;
    assert.equal(a.out.status, 200);
    assert.match(a.out.text, /^retry: 3000\nevent: hello\ndata: {"user":"alice","role":"viewer"}\n\n/);
    assert.match(a.out.text, /event: snapshot\ndata: {"user":"alice","server_time":1000,"incidents":\[{"incident_id":"inc-1"/);
    assert.doesNotMatch(a.out.text, /before/, 'a broadcast before the rebuild is in the snapshot, not sent');

    const v = fakeStream(vic);
    await live.stream(v.request);
    assert.equal(live.size(), 2);
    live.broadcast('incident', { n: 2 });
    for (const s of [a, v]) assert.match(s.out.text, /id: [0-9a-z]+-1\nevent: incident\ndata: {"n":2}\n\n$/);

    live.endRevoked((s) => s.user === 'vic');
    assert.deepEqual([a.out.ended, v.out.ended], [false, true]);
    assert.equal(live.size(), 1);
    assert.equal(counters.snapshot()[METRICS.sseConnections], 2);
  } finally {
    live.close();
  }
  assert.equal(live.size(), 0);
});
