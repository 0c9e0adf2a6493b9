import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArgError, isTlsUrl, parseArgs, type RunOptions } from '../src/args.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

const run = (argv: string[], env: Record<string, string> = {}): RunOptions => {
  const o = parseArgs(argv, env, new Date(0));
  assert.equal(o.command, 'run');
  return o;
};
const refused = (argv: string[], flag: string, words: RegExp): void => {
  assert.throws(
    () => parseArgs(argv, {}),
    (err: unknown) => err instanceof ArgError && err.flag === flag && err.message.startsWith(`${flag}: `) && words.test(err.message),
    `${argv.join(' ')} refused naming ${flag}`,
  );
};

test('defaults: car mode, one connection per car, one worker per 5,000 connections', () => {
  const o = run([]);
  assert.equal(o.mode, 'car');
  assert.equal(o.cars, 100);
  assert.equal(o.connections, 100);
  assert.equal(o.workers, 1);
  assert.equal(o.rateHz, 1);
  assert.equal(o.prefix, 'lt0');
  assert.deepEqual(o.groups, ['pitwall-windowing', 'pitwall-scoring', 'pitwall-incidents', 'pitwall-dispatch']);
  assert.equal(o.topics.telemetry, 'vehicle.telemetry');
  assert.equal(run(['--cars', '12001']).workers, 3);
});

test('MQTT: the secure broker by default, as real cars with certificates of the fleet CA', () => {
  const o = run([]);
  assert.equal(o.mqttUrl, 'mqtts://127.0.0.1:8883');
  assert.equal(o.pkiDir, path.join(REPO, '.pitwall', 'pki'));
  assert.equal(run([], { PITWALL_HOME: '/srv/pitwall' }).pkiDir, '/srv/pitwall/pki');
  assert.equal(run([], { PITWALL_HOME: '/srv/pitwall', PITWALL_PKI_DIR: '/etc/fleet-ca' }).pkiDir, '/etc/fleet-ca');
  assert.equal(run(['--pki', '/tmp/ca'], { PITWALL_PKI_DIR: '/etc/fleet-ca' }).pkiDir, '/tmp/ca');
  assert.equal(run([], { MQTT_URL: 'mqtts://broker.example:8883' }).mqttUrl, 'mqtts://broker.example:8883');
  assert.equal(run(['--mqtt-url', 'mqtt://127.0.0.1:1883'], { MQTT_URL: 'mqtts://x:8883' }).mqttUrl, 'mqtt://127.0.0.1:1883');
  assert.equal(isTlsUrl('mqtts://127.0.0.1:8883'), true);
  assert.equal(isTlsUrl('wss://127.0.0.1:8884/mqtt'), true);
  assert.equal(isTlsUrl('mqtt://127.0.0.1:1883'), false);
  assert.equal(isTlsUrl('ws://127.0.0.1:8080'), false);
});

test('gateway mode multiplexes cars over connections', () => {
  const o = run(['--mode', 'gateway', '--cars', '100000', '--connections', '2000']);
  assert.deepEqual([o.cars, o.connections, o.workers], [100_000, 2000, 1]);
  assert.equal(run(['--mode=gateway', '--cars=1000']).connections, 20);
});

test("topics, groups and window size come from the services' variables; flags win", () => {
  const env = {
    TOPIC_TELEMETRY: 'e2e.x.vehicle.telemetry',
    TOPIC_INCIDENTS: 'e2e.x.maintenance.incidents',
    WINDOWING_GROUP_ID: 'e2e.x.windowing',
    WINDOW_SIZE_MS: '5000',
    WINDOW_GRACE_MS: '500',
    MQTT_URL: 'mqtt://127.0.0.1:18830',
  };
  const o = run([], env);
  assert.equal(o.topics.telemetry, 'e2e.x.vehicle.telemetry');
  assert.equal(o.topics.incidents, 'e2e.x.maintenance.incidents');
  assert.equal(o.groups[0], 'e2e.x.windowing');
  assert.equal(o.windowMs, 5000);
  assert.equal(o.graceMs, 500);
  assert.equal(run(['--grace-ms', '0'], env).graceMs, 0);
  assert.equal(run([], {}).graceMs, 2000);
  assert.equal(o.mqttUrl, 'mqtt://127.0.0.1:18830');
  assert.deepEqual(run(['--groups', 'a,b'], env).groups, ['a', 'b']);
});

test('bad values are refused with a message naming the flag', () => {
  refused(['--rate', '20'], '--rate', /between 0\.1 and 10/);
  refused(['--rate', '0.05'], '--rate', /between/);
  refused(['--rate', 'fast'], '--rate', /expected a number, got "fast"/);
  refused(['--cars', '1.5'], '--cars', /integer/);
  refused(['--cars', '0'], '--cars', /between 1/);
  refused(['--jitter', '1'], '--jitter', /between 0 and 0\.9/);
  refused(['--mode', 'bus'], '--mode', /car or gateway/);
  refused(['--connections', '10'], '--connections', /gateway/);
  refused(['--mode', 'gateway', '--cars', '10', '--connections', '11'], '--connections', /between 1 and 10/);
  refused(['--cars', '40000', '--workers', '2'], '--workers', /at least 3 workers/);
  refused(['--workers', '0'], '--workers', /between 1/);
  refused(['--failure-modes', 'flat_tire'], '--failure-modes', /unknown mode "flat_tire"/);
  refused(['--failures', '101'], '--failures', /between 0 and 100/);
  refused(['--duration', '10', '--failure-at', '20'], '--failure-at', /after the run/);
  refused(['--prefix', 'a-b'], '--prefix', /no "-"/);
  refused(['--prefix', 'Pitwall'], '--prefix', /name services/);
  refused(['--pki', ''], '--pki', /expected a folder/);
  refused(['--mqtt-url', 'http://x'], '--mqtt-url', /mqtt/);
  refused(['--cars'], '--cars', /needs a value/);
  refused(['--cars', '--rate', '1'], '--cars', /needs a value/);
  refused(['--speed', '3'], '--speed', /unknown flag/);
  refused(['--cars', '1', '--cars', '2'], '--cars', /given twice/);
  refused(['--no-verify=yes'], '--no-verify', /no value/);
});

test('a failure at 100 s fits a 40 s run at 10x', () => {
  const o = run(['--duration', '40', '--time-scale', '10', '--failure-at', '100', '--failures', '2', '--failure-modes', 'coolant_overheat,tire_leak']);
  assert.deepEqual(o.failureModes, ['coolant_overheat', 'tire_leak']);
  assert.equal(o.timeScale, 10);
});

test('report and help', () => {
  assert.deepEqual(parseArgs(['report', 'x.jsonl']), { command: 'report', input: 'x.jsonl', out: undefined });
  assert.deepEqual(parseArgs(['report', 'x.jsonl', '--out', 'y.html']), { command: 'report', input: 'x.jsonl', out: 'y.html' });
  assert.deepEqual(parseArgs(['--help']), { command: 'help' });
  assert.throws(() => parseArgs(['report']), /report: expects exactly one JSONL file/);
  assert.throws(() => parseArgs(['report', 'x.jsonl', '--cars', '3']), /--cars: not a flag of report/);
  assert.throws(() => parseArgs(['launch']), /launch: unknown command/);
});

test("process costs: the demo's /metrics endpoints and infra.sh's pid folder by default; flags win", () => {
  const o = run([], { PITWALL_HOME: '/srv/pw' });
  assert.deepEqual(
    o.metrics.map((m) => (m.kind === 'metrics' ? `${m.name}=${m.url}` : m.name)),
    ['ingest', 'windowing', 'scoring', 'dispatch', 'incidents'].map((n, i) => `${n}=http://127.0.0.1:${[9101, 9102, 9103, 9104, 9106][i]}/metrics`),
  );
  assert.equal(o.pidDir, '/srv/pw/run');
  assert.equal(run([]).pidDir, path.join(REPO, '.pitwall/run'));
  const custom = run(['--metrics', 'ingest=http://10.0.0.5:9101/metrics, scoring=https://s/metrics', '--pid-dir', 'none']);
  assert.deepEqual(custom.metrics, [
    { name: 'ingest', kind: 'metrics', url: 'http://10.0.0.5:9101/metrics' },
    { name: 'scoring', kind: 'metrics', url: 'https://s/metrics' },
  ]);
  assert.equal(custom.pidDir, null);
  assert.deepEqual(run(['--metrics', 'none']).metrics, []);
  refused(['--metrics', 'ingest'], '--metrics', /name=url/);
  refused(['--metrics', 'ingest=ftp://x'], '--metrics', /http\(s\) URL for ingest/);
  refused(['--metrics', 'a=http://x,a=http://y'], '--metrics', /a given twice/);
  refused(['--pid-dir', ''], '--pid-dir', /folder or none/);
});

test('--connect-pending bounds the connections waiting for a CONNACK, a whole number', () => {
  assert.equal(run([]).connectPending, 250);
  assert.equal(run(['--connect-pending', '50']).connectPending, 50);
  refused(['--connect-pending', '0'], '--connect-pending', /between 1 and/);
  refused(['--connect-pending', '2.5'], '--connect-pending', /integer/);
});

test('a list of --cars is a sweep: one validated run per size, each with its own argv and file', () => {
  const o = parseArgs(['--cars', '1000,5000', '--duration', '90', '--no-verify', '--pause', '5'], {}, new Date(0));
  assert.equal(o.command, 'sweep');
  if (o.command !== 'sweep') return;
  assert.equal(o.pauseS, 5);
  assert.deepEqual(
    o.runs.map((r) => r.options.cars),
    [1000, 5000],
  );
  assert.equal(o.runs[1]!.options.durationS, 90);
  assert.equal(o.runs[1]!.options.verify, false);
  const argv = o.runs[0]!.argv;
  assert.ok(argv.includes('--cars=1000') && argv.includes('--duration=90') && argv.includes('--no-verify'), argv.join(' '));
  assert.ok(!argv.some((a) => a.startsWith('--pause')), 'the pause is the sweep’s, not a run’s');
  assert.ok(argv.includes(`--out=${o.runs[0]!.options.out}`));
  assert.notEqual(o.runs[0]!.options.out, o.runs[1]!.options.out);
  assert.equal(path.dirname(o.tableOut), path.join(REPO, 'bench-results'));
  // The argv a run's process gets parses back to the same options (but its own prefix).
  const again = parseArgs(argv, {}, new Date(0)) as RunOptions;
  assert.deepEqual({ ...again, prefix: '' }, { ...o.runs[0]!.options, prefix: '' });
});

test('a sweep refuses what must differ per run, bad sizes, and --pause outside a sweep', () => {
  refused(['--cars', '1000,5000', '--prefix', 'x'], '--prefix', /every run of a sweep gets its own/);
  refused(['--cars', '1000,5000', '--out', 'x.jsonl'], '--out', /every run of a sweep gets its own/);
  refused(['--cars', '1000,abc'], '--cars', /expected an integer, got "abc"/);
  refused(['--cars', '1000,'], '--cars', /comma-separated list/);
  refused(['--cars', '1000,2000', '--failures', '1500'], '--failures', /between 0 and 1000/);
  refused(['--cars', '1000,2000', '--pause', '-1'], '--pause', /between 0 and 3600/);
  refused(['--cars', '1000', '--pause', '5'], '--pause', /only with a list of --cars/);
});

test('table takes run files and only --out', () => {
  const o = parseArgs(['table', 'a.jsonl', 'b.jsonl', '--out', 't.md'], {});
  assert.deepEqual(o, { command: 'table', inputs: ['a.jsonl', 'b.jsonl'], out: 't.md' });
  refused(['table'], 'table', /one or more JSONL files/);
  refused(['table', 'a.jsonl', '--duration', '5'], '--duration', /not a flag of table/);
});
