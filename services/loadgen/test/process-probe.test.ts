import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseProcStat, parseProcStatusRss, parsePromProcess, pidSources, processUse, startProcessSampler } from '../src/process-probe.js';

// What prom-client's default metrics look like (abridged), labels and all.
const PROM = `# HELP process_cpu_user_seconds_total Total user CPU time spent in seconds.
# TYPE process_cpu_user_seconds_total counter
process_cpu_user_seconds_total 10.5
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.25
process_resident_memory_bytes{service="ingest"} 104857600
nodejs_heap_size_total_bytes 5e7
`;

test('Prometheus text: the two default process metrics, or null without them', () => {
  assert.deepEqual(parsePromProcess(PROM), { cpuS: 12.25, rssBytes: 104_857_600 });
  assert.equal(parsePromProcess('process_cpu_seconds_total 1\n'), null);
  assert.equal(parsePromProcess('<html>not metrics</html>'), null);
});

test('/proc stat and status: CPU ticks, start time and VmRSS; a command name with spaces and ")"', () => {
  const fields = Array.from({ length: 50 }, (_, i) => String(i + 1)); // field k holds k
  const stat = `4242 (java (kafka) x) ${fields.slice(2).join(' ')}`;
  assert.deepEqual(parseProcStat(stat), { cpuS: (14 + 15) / 100, startTicks: 22 });
  assert.equal(parseProcStat('garbage'), null);
  assert.equal(parseProcStatusRss('Name:\tjava\nVmRSS:\t  123456 kB\nThreads: 3\n'), 123_456 * 1024);
  assert.equal(parseProcStatusRss('Name:\tzombie\n'), null);
});

test('CPU between samples; no rate without a previous sample or across a restart', () => {
  assert.deepEqual(processUse({ cpuS: 11, rssBytes: 2 ** 30 }, { cpuS: 10, rssBytes: 0 }, 2), { cpuPct: 50, rssMB: 1024 });
  assert.deepEqual(processUse({ cpuS: 11, rssBytes: 2 ** 20 }, null, 1), { cpuPct: null, rssMB: 1 });
  assert.deepEqual(processUse({ cpuS: 1, rssBytes: 2 ** 20 }, { cpuS: 10, rssBytes: 0 }, 1), { cpuPct: null, rssMB: 1 });
  assert.equal(processUse(null, { cpuS: 1, rssBytes: 1 }, 1), null);
});

test('pid files of infra.sh name the brokers; services started by scripts/pitwall (svc-*) are not brokers', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pids-'));
  for (const f of ['kafka.pid', 'mosquitto.pid', 'svc-ingest.pid', 'kafka.properties']) writeFileSync(path.join(dir, f), '1');
  assert.deepEqual(
    pidSources(dir).map((s) => s.name),
    ['kafka', 'mosquitto'],
  );
  assert.deepEqual(pidSources(path.join(dir, 'missing')), []);
});

test('sampler: a live /metrics endpoint and a live pid; a dead pid and a closed port read as null', async () => {
  const server = createServer((_req, res) => res.end(PROM));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const dir = mkdtempSync(path.join(tmpdir(), 'pids-'));
  writeFileSync(path.join(dir, 'self.pid'), String(process.pid));
  writeFileSync(path.join(dir, 'dead.pid'), '999999999');
  const sampler = startProcessSampler([
    { name: 'svc', kind: 'metrics', url: `http://127.0.0.1:${port}/metrics` },
    { name: 'closed', kind: 'metrics', url: 'http://127.0.0.1:1/metrics' },
    ...pidSources(dir),
  ]);
  try {
    let latest = sampler.latest();
    for (let i = 0; i < 50 && latest.processes.svc === null; i++) {
      await new Promise((r) => setTimeout(r, 50));
      latest = sampler.latest();
    }
    assert.deepEqual(latest.processes.svc, { cpuS: 12.25, rssBytes: 104_857_600 });
    assert.equal(latest.processes.closed, null);
    assert.equal(latest.processes.dead, null);
    const self = latest.processes.self!;
    assert.ok(self.rssBytes > 10 * 2 ** 20 && self.rssBytes < 4 * 2 ** 30, `own RSS ${self.rssBytes}`);
    assert.ok(self.cpuS > 0 && self.cpuS <= process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6 + 0.05, `own CPU ${self.cpuS}`);
  } finally {
    await sampler.stop();
    server.close();
  }
});
