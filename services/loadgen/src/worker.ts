/**
 * A worker process (forked by the coordinator). On `init`, over TLS, it issues its connections'
 * certificates in memory (identities.ts) and says `ready`; on `start` it opens its share of the
 * connections at its share of the connect rate, publishes each connection's readings (sampled on
 * its slot grid) at its jittered due times until the run's end, waits for every publish to settle,
 * and reports counters, alerts, CPU and memory every second. On `close` it clears the retained
 * state its cars got (where the broker lets a car do so), disconnects and sends the final counts
 * and the ramp's timings.
 */
import { createRng, hashSeed } from '@pitwall/simulator';
import { openConnection, type Connection } from './connection.js';
import { issueIdentities, type Tls } from './identities.js';
import { zeroCounters, type AlertEvent, type CoordinatorMessage, type WorkerInit, type WorkerMessage, type WorkerStart } from './messages.js';
import { eventAt } from './plan.js';
import { createTicker, DueQueue, makeCadence, sampleTs, slotAt } from './schedule.js';

/** Longest wait at the end for publishes to be acknowledged. */
const SETTLE_TIMEOUT_MS = 15_000;

/** Never rejects: an IPC error goes to the callback, which resolves, so callers may `void` it. */
const send = (m: WorkerMessage): Promise<void> =>
  new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(m, undefined, {}, () => resolve());
  });
const usage = () => {
  const cpu = process.cpuUsage();
  return { cpuUs: cpu.user + cpu.system, rss: process.memoryUsage().rss };
};

function run(init: WorkerInit, start: WorkerStart, tls: readonly Tls[] | undefined): { close(): Promise<void> } {
  const counters = zeroCounters();
  counters.target = init.connections.length;
  let alerts: AlertEvent[] = [];
  const open: Connection[] = [];
  type Sender = { conn: Connection; firstTs: number; k: number; next: () => { k: number; due: number } };
  const queue = new DueQueue<Sender>();
  const { clock } = start;
  const openedAt: number[] = [];
  const connectMs: number[] = [];
  let allUpAt: number | null = null;
  const endWall = clock.wallStart + init.durationMs;
  let timer: NodeJS.Timeout | undefined;
  let publishing = true;

  const arm = (): void => {
    if (timer) clearTimeout(timer);
    const due = queue.peek();
    timer = due === undefined || !publishing ? undefined : setTimeout(drainDue, Math.max(0, due - Date.now()));
  };
  const drainDue = (): void => {
    const now = Date.now();
    for (let due = queue.peek(); due !== undefined && due <= now + 1; due = queue.peek()) {
      const { item } = queue.pop()!;
      if (due >= endWall) continue;
      item.conn.tick(sampleTs(item.firstTs, init.rateHz, item.k));
      const next = item.next();
      item.k = next.k;
      queue.push(next.due, item);
    }
    arm();
  };

  const openOne = (k: number): void => {
    const spec = init.connections[k]!;
    const failures = start.failures.filter((f) => f.vehicleId.startsWith(`${spec.label}-`));
    const conn: Connection = openConnection({
      spec,
      url: init.mqttUrl,
      ...(init.mqttUsername ? { username: init.mqttUsername } : {}),
      ...(init.mqttPassword ? { password: init.mqttPassword } : {}),
      ...(tls ? { tls: tls[k]! } : {}),
      seed: init.seed,
      failures,
      counters,
      onAlert: (e) => alerts.push(e),
      onFirstConnect: () => {
        connectMs.push(Date.now() - openedAt[k]!);
        if (connectMs.length === init.connections.length) allUpAt = Date.now();
        if (!publishing) return;
        const cadence = makeCadence({ origin: clock.wallStart, rateHz: init.rateHz, timeScale: clock.timeScale, jitter: init.jitter, phase: hashSeed('phase', init.seed, spec.index) / 2 ** 32 });
        const ticker = createTicker(cadence, createRng(hashSeed('jitter', init.seed, spec.index)), Date.now());
        const first = ticker.next();
        queue.push(first.due, { conn, firstTs: Math.round(eventAt(clock, slotAt(cadence, 0))), k: first.k, next: ticker.next });
        arm();
      },
    });
    open.push(conn);
  };
  const openAt = (k: number): void => {
    openedAt[k] = Date.now();
    openOne(k);
  };

  // Connect ramp: connection k opens at wallStart + k / rate at the earliest, and only while fewer
  // than connectPending are waiting for their first CONNACK. Opening faster than the broker
  // handshakes only queues handshakes past the connect timeout, and every timed-out car comes back
  // 2 s later on top of the queue (2,666 errors and 7,707 of 10,000 TLS cars up in one run at 500/s).
  let opened = 0;
  const ramp = setInterval(() => {
    const due = Math.min(init.connections.length, Math.floor(((Date.now() - clock.wallStart) * init.connectRate) / 1000) + 1);
    while (opened < due && opened - connectMs.length < init.connectPending && Date.now() < endWall) openAt(opened++);
    if (opened >= init.connections.length || Date.now() >= endWall) clearInterval(ramp);
  }, 10);

  // Stats go out just before each whole second of the run, when the coordinator writes its line.
  let report: NodeJS.Timeout | undefined;
  const reportAt = (k: number): void => {
    report = setTimeout(
      () => {
        void send({ type: 'stats', worker: init.worker, second: k, counters: { ...counters }, alerts, usage: usage() });
        alerts = [];
        reportAt(k + 1);
      },
      Math.max(0, clock.wallStart + k * 1000 - 150 - Date.now()),
    );
  };
  reportAt(Math.max(1, Math.ceil((Date.now() - clock.wallStart + 150) / 1000)));

  const inFlight = (): number => open.reduce((n, c) => n + c.inFlight(), 0);
  const settle = async (): Promise<void> => {
    publishing = false;
    clearInterval(ramp);
    if (timer) clearTimeout(timer);
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    while (inFlight() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await send({ type: 'published', worker: init.worker });
  };
  // A timer drops the promise its callback returns: a failure goes to fatal explicitly rather than
  // through the unhandled-rejection path.
  setTimeout(
    () => {
      settle().catch(fatal);
    },
    Math.max(0, endWall - Date.now()),
  );

  return {
    async close() {
      clearInterval(ramp);
      clearTimeout(report);
      if (timer) clearTimeout(timer);
      // With certificates a car may not write its maintenance state: the coordinator clears it as dispatch.
      const clearState = tls === undefined;
      await Promise.all(open.map((c) => c.close(clearState)));
      const ackedByCar: Record<string, number> = {};
      for (const c of open) c.fleet.vehicleIds.forEach((id, i) => (ackedByCar[id] = c.acked()[i]!));
      const retained = clearState ? [] : open.flatMap((c) => c.withState());
      const rampStats = { firstOpenAt: openedAt.length > 0 ? openedAt[0]! : null, allUpAt, connectMs };
      await send({ type: 'final', worker: init.worker, counters: { ...counters }, alerts, usage: usage(), ackedByCar, ramp: rampStats, retained });
    },
  };
}

let worker = -1;
let init: WorkerInit | undefined;
let identities: Tls[] | undefined;
let running: ReturnType<typeof run> | undefined;

/** Issues the connections' certificates (over TLS), then tells the coordinator it may start. */
async function prepare(m: WorkerInit): Promise<void> {
  let stats = null;
  if (m.pkiDir !== undefined) {
    const total = m.connections.length;
    const issued = await issueIdentities(m.pkiDir, m.mode, m.connections, (done) => void send({ type: 'issuing', worker: m.worker, done, total }));
    identities = issued.tls;
    stats = issued.stats;
  }
  await send({ type: 'ready', worker: m.worker, identities: stats, usage: usage() });
}

/** Reports the error and exits; never settles, so `void fatal(err)` loses nothing. */
const fatal = async (err: unknown): Promise<never> => {
  await send({ type: 'fatal', worker, message: (err as Error)?.stack ?? String(err) });
  process.exit(1);
};
process.on('uncaughtException', (err) => void fatal(err));
process.on('message', (m: CoordinatorMessage) => {
  try {
    if (m.type === 'init' && !init) {
      worker = m.worker;
      init = m;
      prepare(m).catch(fatal);
    } else if (m.type === 'start' && init && !running) {
      running = run(init, m, identities);
    } else if (m.type === 'close') {
      if (!running) process.exit(0);
      running.close().then(() => process.exit(0), fatal);
    }
  } catch (err) {
    void fatal(err);
  }
});
// Ctrl-C reaches the whole process group: the coordinator decides when workers close.
process.on('SIGINT', () => {});
// The coordinator went away: nothing to report to any more.
process.on('disconnect', () => process.exit(0));
