import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchRoute, pathSegments, type Route } from '../src/router.js';

const routes: Route<string>[] = [
  { method: '*', path: '/healthz', handle: () => {} },
  { method: 'GET', path: '/static/*', handle: () => {} },
  { method: 'GET', path: '/api/incidents/:id', handle: () => {} },
  { method: 'POST', path: '/api/incidents/:id/ack', handle: () => {} },
  { method: 'GET', path: '/api/vehicles/:vehicle/*', when: ({ vehicle }) => vehicle === 'bad', handle: () => {} },
  { method: 'GET', path: '/api/vehicles/:vehicle/telemetry', handle: () => {} },
  { method: 'GET', path: '/', handle: () => {} },
];

test('pathSegments', () => {
  assert.deepEqual(pathSegments('/'), ['']);
  assert.deepEqual(pathSegments('/a/b'), ['a', 'b']);
  assert.deepEqual(pathSegments('/a/'), ['a', '']);
});

test('matchRoute: the first route whose method and path match, with its parameters', () => {
  const cases: [method: string, path: string, expected: [index: number, params: Record<string, string>] | undefined][] = [
    ['GET', '/healthz', [0, {}]],
    ['DELETE', '/healthz', [0, {}]],
    ['GET', '/healthz/x', undefined],
    // `*` is one or more segments: /static/ is in, /static is not.
    ['GET', '/static/app.js', [1, {}]],
    ['GET', '/static/', [1, {}]],
    ['GET', '/static/a/b', [1, {}]],
    ['GET', '/static', undefined],
    ['HEAD', '/static/app.js', [1, {}]],
    ['POST', '/static/app.js', undefined],
    // A parameter is any one segment, an empty one too.
    ['GET', '/api/incidents/inc-1', [2, { id: 'inc-1' }]],
    ['GET', '/api/incidents/', [2, { id: '' }]],
    ['GET', '/api/incidents', undefined],
    ['GET', '/api/incidents/inc-1/ack', undefined],
    ['POST', '/api/incidents/inc-1/ack', [3, { id: 'inc-1' }]],
    ['PUT', '/api/incidents/inc-1/ack', undefined],
    // `when` turns a match down, and the next route is tried.
    ['GET', '/api/vehicles/bad/telemetry', [4, { vehicle: 'bad' }]],
    ['GET', '/api/vehicles/car-1/telemetry', [5, { vehicle: 'car-1' }]],
    ['GET', '/', [6, {}]],
    ['GET', '//', undefined],
  ];
  for (const [method, path, expected] of cases) {
    const found = matchRoute(routes, method, pathSegments(path));
    assert.deepEqual(found && [routes.indexOf(found.route), { ...found.params }], expected, `${method} ${path}`);
  }
});
