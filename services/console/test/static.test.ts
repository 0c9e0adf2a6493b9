import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contentTypeFor, defaultPublicDir, isFresh, loadDir, staticFile } from '../src/static.js';

test('content types', () => {
  const cases: [string, string][] = [
    ['app.js', 'text/javascript; charset=utf-8'],
    ['app.css', 'text/css; charset=utf-8'],
    ['login.html', 'text/html; charset=utf-8'],
    ['favicon.svg', 'image/svg+xml'],
    ['UPLOT.ESM.JS', 'text/javascript; charset=utf-8'],
    ['data.bin', 'application/octet-stream'],
  ];
  for (const [file, type] of cases) assert.equal(contentTypeFor(file), type, file);
});

test('ETag revalidation', () => {
  const f = staticFile(Buffer.from('body'), 'a.css', 'no-cache');
  assert.match(f.etag, /^"[\w-]+"$/);
  assert.notEqual(f.etag, staticFile(Buffer.from('other'), 'a.css', 'no-cache').etag);
  assert.equal(isFresh(f.etag, f.etag), true);
  assert.equal(isFresh(`W/${f.etag}`, f.etag), true);
  assert.equal(isFresh(`"x", ${f.etag}`, f.etag), true);
  assert.equal(isFresh('"x"', f.etag), false);
  assert.equal(isFresh(undefined, f.etag), false);
});

test('the UI files are all there and typed', async () => {
  const files = await loadDir(defaultPublicDir(), '/static/', 'no-cache');
  for (const name of ['app.html', 'login.html', 'app.js', 'store.js', 'live.js', 'router.js', 'login.js', 'dom.js', 'fleet.js', 'vehicle.js', 'charts.js', 'app.css', 'favicon.svg']) {
    assert.ok(files.has(`/static/${name}`), name);
  }
  assert.equal(files.get('/static/app.js')?.contentType, 'text/javascript; charset=utf-8');
  // Browser modules import only what the server serves.
  for (const [url, f] of files) {
    if (!url.endsWith('.js')) continue;
    for (const m of f.body.toString('utf8').matchAll(/from '([^']+)'/g)) {
      const spec = m[1]!;
      const ok = spec.startsWith('./') ? files.has(`/static/${spec.slice(2)}`) : spec === '/vendor/uPlot.esm.js';
      assert.ok(ok, `${url} imports ${spec}`);
    }
  }
});
