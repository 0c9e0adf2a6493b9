/**
 * Fault injection on private brokers (support/private-infra.ts: their own Kafka, Mosquitto and
 * Apicurio on other ports, so killing them disturbs no other test). Each check is its own test with
 * its own topics and service processes; they share only the brokers. Counts go to t.diagnostic;
 * a check that finds a loss, a duplicate or a stall fails.
 *
 * 1. kill -9 + restart of Mosquitto, Kafka and each service during one fleet run: no acknowledged
 *    reading lost; every window emitted once with all its readings, or with its missing readings on
 *    the late topic; no scored window or alert lost; exactly one incident per failing car (revisions
 *    1..n), none for a healthy car; the failing cars get their alerts over MQTT. Recovery times.
 * 2. 400 payloads over ingest's size limit within a second: all dead-lettered, the other cars keep
 *    flowing, ingest stays ready and exits 0 on SIGTERM promptly.
 * 3. 5,000 cars on 3 partitions: every window of every car emitted, with all its readings.
 * 4. a reading 23 h ahead is dead-lettered (ts.out_of_range), one 90 s ahead accepted; the other
 *    cars' windows keep coming, on the poisoned car's partition too.
 * 5. a 1 MB payload and vehicle ids "." and "..": dead-lettered with their reason, nothing lost,
 *    every publisher callback completes.
 * 6. /readyz: 503 from every service during a 20 s Kafka outage and 200 again afterwards without a
 *    restart; 503 from ingest during a Mosquitto outage.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Kafka } from 'kafkajs';
import type { IClientOptions, MqttClient } from 'mqtt';
import { createCarInbox, createFleet, createSimulator, toPayload, type CarAlert, type FailureSpec } from '@pitwall/simulator';
import { silentLogger } from '@pitwall/common';
import { isolatedEnv, runId, waitFor } from './support/stack.js';
import { startPrivateInfra, type PrivateInfra } from './support/private-infra.js';
import {
  accountWindows,
  kafkaFor,
  mqttClient,
  pollReadiness,
  publishOnce,
  readDlq,
  readFeatures,
  readLate,
  readRecords,
  readTelemetry,
  secs,
  Services,
  sleep,
  STAGES,
  tailTopic,
  trackAcks,
  WINDOW,
  within,
  type AlertRecord,
  type DeadLetter,
  type FeatureRow,
  type IncidentRecord,
  type PublishOutcome,
  type ScoreRecord,
  type Telemetry,
} from './support/faults.js';
import { tlsAs } from './support/identities.js';

let infra: PrivateInfra;
let kafka: Kafka;

interface Rig {
  id: string;
  /** Vehicle id prefix of this check. */
  prefix: string;
  env: Record<string, string>;
  svcs: Services;
  /** What the check found wrong; it fails unless this stays empty. */
  problems: string[];
  /** An MQTT 5 client on the private broker, ended with the check. */
  mqtt: (name: string, extra?: IClientOptions) => Promise<MqttClient>;
}

/**
 * One check: brokers up (a previous check may have left one dead), `services` started with topics
 * and groups of their own and ready, then `body`; afterwards everything it started is stopped and
 * the check fails if it recorded a problem.
 */
async function check(t: TestContext, n: number, services: readonly string[], extraEnv: Record<string, string>, body: (r: Rig) => Promise<void>, restartOnExit = false): Promise<void> {
  await infra.up();
  const id = runId();
  const env = { ...infra.env, ...isolatedEnv(id), ...extraEnv };
  const svcs = new Services(env, `faults${n}-${id}`, restartOnExit);
  const problems: string[] = [];
  const clients: MqttClient[] = [];
  const mqtt = async (name: string, extra: IClientOptions = {}): Promise<MqttClient> => {
    const c = await mqttClient(env.MQTT_URL, `faults${n}-${name}-${id}`, extra);
    clients.push(c);
    return c;
  };
  try {
    for (const s of services) await svcs.start(s);
    for (const s of services) if ((await svcs.waitReady(s, 90_000)) === undefined) throw new Error(`${s} did not become ready`);
    await body({ id, prefix: `f${n}${id}`, env, svcs, problems, mqtt });
  } finally {
    t.diagnostic(`services on SIGTERM (exit code): ${JSON.stringify(await svcs.stopAll())}`);
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
  }
  if (svcs.unexpectedExits.length) problems.push(`services exited by themselves: ${svcs.unexpectedExits.join('; ')}`);
  say(t, problems.length ? [`PROBLEMS (${problems.length}):`, ...problems.slice(0, 40).map((p) => `  - ${p}`)] : ['no problem found']);
  assert.deepEqual(problems, []);
}

const say = (t: TestContext, lines: string[]): void => lines.forEach((l) => t.diagnostic(l));
/** A plausible reading of some car at `ts`, as a JSON payload object. */
const reading = (ts: number): Record<string, number> => toPayload(createFleet({ cars: 1, seed: 99 }).tick(ts)[0]!);
/** Is `vehicle@ts` among the distinct readings of the telemetry topic? */
const has = (tel: Telemetry | undefined, key: string): boolean => Boolean(tel?.readings.get(key.slice(0, key.lastIndexOf('@')))?.has(Number(key.slice(key.lastIndexOf('@') + 1))));

describe('fault injection on private brokers', { timeout: 1_500_000 }, () => {
  before(
    async () => {
      infra = await startPrivateInfra(runId());
      kafka = kafkaFor(infra.env.KAFKA_BROKERS);
    },
    { timeout: 300_000 },
  );
  after(async () => {
    await infra?.stop();
  });

  test('1. kill -9 and restart of Mosquitto, Kafka and every service during a fleet run', { timeout: 600_000 }, (t) =>
    check(
      t,
      1,
      STAGES,
      { INGEST_SESSION_EXPIRY_S: '60', WINDOWING_IDLE_MS: '10000' },
      async ({ prefix, env, svcs, problems, mqtt }) => {
        const url = env.SCHEMA_REGISTRY_URL!;
        let stopTails = async (): Promise<unknown> => undefined;
        const phases: { name: string; at: number }[] = [{ name: 'before any fault', at: 0 }];
        try {
          // Event time runs SCALE times faster than the wall clock and starts in the past, so that it
          // never gets ahead of the wall clock within MAX_WALL_MS (ingest refuses readings from the future).
          const CARS = 150;
          const SCALE = 2;
          const MAX_WALL_MS = 330_000;
          const wall0 = Date.now();
          const startTs = Math.floor((wall0 - MAX_WALL_MS * (SCALE - 1)) / 1000) * 1000;
          const failures: FailureSpec[] = [
            { vehicleId: `${prefix}-0007`, mode: 'coolant_overheat', onsetTs: startTs + 10_000, rampMs: 20_000 },
            { vehicleId: `${prefix}-0061`, mode: 'tire_leak', onsetTs: startTs + 90_000, rampMs: 30_000 },
            { vehicleId: `${prefix}-0123`, mode: 'battery_degradation', onsetTs: startTs + 160_000, rampMs: 30_000 },
          ];
          const failing = new Set(failures.map((f) => f.vehicleId));
          const fleet = createFleet({ cars: CARS, seed: 11, idPrefix: prefix, failures });

          const simClient = await mqtt('sim');
          // The cars' telematics units keep a persistent session, so alerts sent while they are offline wait for them.
          const carsClient = await mqtt('cars', { clean: false, properties: { sessionExpiryInterval: 900 } });
          // The operators' feed (fleet/...) is readable only by the operators' identity.
          const opsClient = await mqtt('operators', await tlsAs(env.MQTT_URL!, 'service', 'operators'));
          const fleetMessages: number[] = [];
          opsClient.on('message', () => fleetMessages.push(Date.now()));
          await opsClient.subscribeAsync(env.DISPATCH_FLEET_TOPIC!, { qos: 1 });
          const carAlerts: CarAlert[] = [];
          const inbox = createCarInbox({ client: carsClient, vehicleIds: fleet.vehicleIds, log: silentLogger, receipts: true, onAlert: (a) => carAlerts.push(a) });
          await inbox.start();
          const acked = new Set<string>();
          const pubacks = { noSubscriber: 0 };
          const sim = createSimulator({
            client: trackAcks(simClient, acked, pubacks),
            fleet,
            log: silentLogger,
            timeScale: SCALE,
            startTs,
            durationMs: MAX_WALL_MS * SCALE,
            maxInFlight: 100_000,
          });
          const simStart = Date.now();
          phases[0]!.at = simStart;
          sim.start();

          // What each stage writes, followed live: producer timestamps of the records on its output
          // topic; dispatch: arrival of its MQTT messages to the operators' topic.
          const tails = {
            telemetry: await tailTopic(kafka, env.TOPIC_TELEMETRY!),
            features: await tailTopic(kafka, env.TOPIC_FEATURES!),
            scores: await tailTopic(kafka, env.TOPIC_SCORES!),
            incidents: await tailTopic(kafka, env.TOPIC_INCIDENTS!),
          };
          stopTails = () => Promise.all(Object.values(tails).map((x) => x.stop()));
          const outputs: Record<string, { count(): number; firstAfter(t: number): number | undefined }> = {
            ...tails,
            'dispatch (MQTT)': { count: () => fleetMessages.length, firstAfter: (t) => fleetMessages.find((m) => m >= t) },
          };
          const names = Object.keys(outputs);
          /** ms from t0 until each output has a record written at or after t0 (undefined: not within timeoutMs). */
          const recovery = async (t0: number, timeoutMs: number): Promise<Record<string, number | undefined>> => {
            await waitFor('every stage writing', () => names.every((k) => outputs[k]!.firstAfter(t0) !== undefined) || undefined, timeoutMs, 200).catch(() => {});
            await sleep(1_500); // followers may still be catching up on earlier records
            return Object.fromEntries(names.map((k) => [k, outputs[k]!.firstAfter(t0) === undefined ? undefined : outputs[k]!.firstAfter(t0)! - t0]));
          };

          await waitFor('a first incident', () => tails.incidents.count() > 0 || undefined, 120_000).catch(() => problems.push('no incident within 120 s of the start, before any fault'));
          t.diagnostic(`first incident after ${secs(Date.now() - wall0)}; injecting faults`);

          // Which outputs must write again after each restart.
          const needs: Record<string, string[]> = {
            mosquitto: ['telemetry', 'dispatch (MQTT)'],
            kafka: names,
            ingest: ['telemetry'],
            windowing: ['features'],
            scoring: ['scores'],
            incidents: ['incidents'],
            dispatch: ['dispatch (MQTT)'],
          };
          const table = [`| killed (kill -9) | down | restart → ready | restart → writing again: ${names.join(' | ')} |`, `|---|---|---|${names.map(() => '---|').join('')}`];
          for (const target of ['mosquitto', 'kafka', ...STAGES]) {
            const broker = target === 'mosquitto' || target === 'kafka';
            const downMs = target === 'kafka' ? 5_000 : broker ? 3_000 : 2_000;
            phases.push({ name: `from the kill of ${target}`, at: Date.now() });
            if (broker) await infra.kill(target);
            else await svcs.kill(target);
            await sleep(downMs);
            const tRestart = Date.now();
            let readyMs: number | undefined;
            if (broker) {
              await infra.up();
              readyMs = Date.now() - tRestart;
            } else {
              await svcs.start(target);
              readyMs = await svcs.waitReady(target, 60_000);
            }
            const rec = await recovery(tRestart, 45_000);
            table.push(`| ${target} | ${secs(downMs)} | ${secs(readyMs)} | ${names.map((k) => secs(rec[k])).join(' | ')} |`);
            t.diagnostic(table.at(-1)!);
            for (const k of needs[target]!) if (rec[k] === undefined) problems.push(`after the restart of ${target}, ${k} did not write again within 45 s`);
            await sleep(2_000);
          }

          // Let the last failure develop, then stop the cars and let the pipeline drain (idle markers close the last windows).
          phases.push({ name: 'after the last restart', at: Date.now() });
          await sleep(Math.max(15_000, wall0 + 170_000 - Date.now()));
          await within('the simulator to settle its publishes', sim.stop(), 60_000).catch((err: Error) => problems.push(err.message));
          const simStats = sim.stats();
          let last = '';
          let stableSince = Date.now();
          const drainT0 = Date.now();
          // Cars that stopped close after WINDOWING_VEHICLE_IDLE_MS (60 s) of arrival time, advanced by idle markers.
          while (Date.now() - stableSince < 75_000 && Date.now() - drainT0 < 180_000) {
            const now = names.map((k) => outputs[k]!.count()).join();
            if (now !== last) [last, stableSince] = [now, Date.now()];
            await sleep(1_000);
          }
          inbox.stop();

          // Readings: acknowledged to the cars (PUBACK) vs distinct (vehicle, ts) in vehicle.telemetry.
          const tel = await readTelemetry(kafka, url, env.TOPIC_TELEMETRY!);
          const lost = [...acked].filter((k) => !has(tel, k));
          // When the lost readings were published (event time maps back to wall time), by fault phase.
          const lostBy = new Map<string, { n: number; from: number; to: number }>();
          for (const k of lost) {
            const wall = simStart + (Number(k.slice(k.lastIndexOf('@') + 1)) - startTs) / SCALE;
            const phase = phases.filter((p) => p.at <= wall).at(-1)!;
            const b = lostBy.get(phase.name) ?? lostBy.set(phase.name, { n: 0, from: Infinity, to: -Infinity }).get(phase.name)!;
            [b.n, b.from, b.to] = [b.n + 1, Math.min(b.from, wall - phase.at), Math.max(b.to, wall - phase.at)];
          }
          const lostText = [...lostBy].map(([p, b]) => `${b.n} ${p}, published ${secs(b.from)} to ${secs(b.to)} after it`).join('; ');
          if (lost.length) problems.push(`${lost.length} acknowledged readings missing from the telemetry topic (${lostText}), e.g. ${lost.slice(0, 3).join(', ')}`);

          // Windows: vehicle.features vs a batch computation over the telemetry topic's distinct readings.
          const features = await readFeatures(kafka, url, env.TOPIC_FEATURES!);
          const late = await readLate(kafka, env.TOPIC_TELEMETRY_LATE!);
          const acc = accountWindows(tel, features, late);
          if (acc.duplicates.length) problems.push(`${acc.duplicates.length} windows emitted more than once, e.g. ${acc.duplicates.slice(0, 5).join(', ')}`);
          if (acc.unexplained.length) problems.push(`${acc.unexplained.length} windows lost readings not on the late topic, e.g. ${acc.unexplained.slice(0, 5).join('; ')}`);
          if (acc.phantom.length) problems.push(`${acc.phantom.length} windows emitted that the readings do not give, e.g. ${acc.phantom.slice(0, 5).join('; ')}`);
          if (acc.valueMismatches.length)
            problems.push(`${acc.valueMismatches.length} complete windows with other feature values than the batch computation, e.g. ${acc.valueMismatches.slice(0, 3).join('; ')}`);

          // Scores and alerts: every window with enough readings scored; every anomalous score's alert on maintenance.alerts.
          const scores = await readRecords<ScoreRecord>(kafka, url, env.TOPIC_SCORES!, 'score');
          const alerts = await readRecords<AlertRecord>(kafka, url, env.TOPIC_ALERTS!, 'alert');
          const scored = new Set(scores.map((s) => `${s.vehicle_id}@${s.window_start}`));
          const unscored = features.filter((f) => f.count >= 8 && !scored.has(`${f.vehicle}@${f.start}`));
          if (unscored.length)
            problems.push(
              `${unscored.length} windows with >= 80 % of their readings never scored, e.g. ${unscored
                .slice(0, 5)
                .map((f) => `${f.vehicle}@${f.start}`)
                .join(', ')}`,
            );
          const alertIds = new Set(alerts.map((a) => a.alert_id));
          const anomalous = new Map(scores.filter((s) => s.anomalous).map((s) => [s.alert_id!, s]));
          const alertsLost = [...anomalous.keys()].filter((a) => !alertIds.has(a));
          if (alertsLost.length) problems.push(`${alertsLost.length} anomalous scores without their alert on maintenance.alerts`);

          // Incidents: revisions 1..n per incident, one incident per failing car and area, none for healthy cars.
          const incidents = await readRecords<IncidentRecord>(kafka, url, env.TOPIC_INCIDENTS!, 'incident');
          const byIncident = new Map<string, IncidentRecord[]>();
          for (const r of incidents) (byIncident.get(r.incident_id) ?? byIncident.set(r.incident_id, []).get(r.incident_id)!).push(r);
          const latest = [...byIncident.values()].map((rs) => rs.reduce((a, b) => (b.revision > a.revision ? b : a)));
          for (const [incidentId, rs] of byIncident) {
            const revs = rs.map((r) => r.revision).sort((a, b) => a - b);
            const expectedRevs = Array.from({ length: revs.at(-1)! }, (_, i) => i + 1);
            if (JSON.stringify(revs) !== JSON.stringify(expectedRevs)) problems.push(`incident ${incidentId}: revisions ${revs.join(',')} are not 1..${revs.at(-1)} once each`);
          }
          const closedAt = (i: IncidentRecord): number => (i.status === 'CLEARED' || i.status === 'RESOLVED' ? i.updated_at : Number.POSITIVE_INFINITY);
          const perCar: string[] = [];
          for (const f of failures) {
            const mine = latest.filter((i) => i.vehicle_id === f.vehicleId).sort((a, b) => a.opened_at - b.opened_at);
            const received = new Set(carAlerts.filter((a) => a.vehicleId === f.vehicleId).map((a) => a.incidentId));
            perCar.push(
              `${f.vehicleId} ${f.mode} (onset +${(f.onsetTs - startTs) / 1000} s event time): ${mine.length} incident(s) ` +
                mine
                  .map(
                    (i) =>
                      `[${i.area} ${i.status} ${i.severity} rev ${i.revision}, ${i.anomalous_windows} anomalous windows, first window ${(i.first_window_start - f.onsetTs) / 1000} s after onset, ` +
                      `alert received by the car: ${received.has(i.incident_id)}, delivered_at set: ${i.delivered_at !== null}]`,
                  )
                  .join(' '),
            );
            if (mine.length === 0) problems.push(`failing car ${f.vehicleId} (${f.mode}) got no incident`);
            for (const i of mine) {
              const overlapping = mine.filter((o) => o !== i && o.area === i.area && o.opened_at >= i.opened_at && o.opened_at < closedAt(i));
              if (overlapping.length) problems.push(`failing car ${f.vehicleId}: incident ${i.incident_id} (${i.area}) duplicated by ${overlapping.map((o) => o.incident_id).join(', ')}`);
              if (!received.has(i.incident_id)) problems.push(`failing car ${f.vehicleId} never received an alert for incident ${i.incident_id} over MQTT`);
            }
          }
          const healthyIncidents = latest.filter((i) => !failing.has(i.vehicle_id));
          if (healthyIncidents.length)
            problems.push(
              `${healthyIncidents.length} incidents for healthy cars: ${healthyIncidents
                .slice(0, 5)
                .map((i) => `${i.vehicle_id} ${i.area}`)
                .join(', ')}`,
            );
          const healthyAlerts = carAlerts.filter((a) => !failing.has(a.vehicleId));
          if (healthyAlerts.length) problems.push(`${healthyAlerts.length} MQTT alerts received by healthy cars`);

          const lateOnly = [...late].filter((k) => k.startsWith(prefix)).length;
          say(t, [
            `fleet: ${CARS} cars at 1 Hz, time scale ${SCALE}, ${secs(Date.now() - wall0)} wall; simulator published ${simStats.published}, failed ${simStats.failed}, in flight at the end ${simStats.inFlight}`,
            `readings: ${acked.size} acknowledged (PUBACK; besides ${pubacks.noSubscriber} PUBACKs 'no matching subscribers', which the simulator sends again); ` +
              `telemetry topic: ${tel.records} records, ${tel.distinct} distinct (vehicle, ts), ${tel.records - tel.distinct} redelivered duplicates; lost: ${lost.length}${lost.length ? ` (${lostText})` : ''}`,
            `windows: ${acc.expected} in the batch computation; ${acc.emitted} emitted (${acc.duplicates.length} duplicated); complete with identical features ${acc.complete}; ` +
              `partial or missing with their missing readings on the late topic ${acc.explainedByLate} (late topic: ${lateOnly} readings); ` +
              `unexplained ${acc.unexplained.length}; phantom ${acc.phantom.length}; feature mismatches ${acc.valueMismatches.length}`,
            `scores: ${scores.length} records, ${scored.size} distinct windows, ${anomalous.size} anomalous; never scored though >= 80 % covered: ${unscored.length}`,
            `alerts: ${alerts.length} records, ${alertIds.size} distinct (${alerts.length - alertIds.size} re-sent duplicates, allowed: at-least-once); lost: ${alertsLost.length}`,
            `incidents: ${byIncident.size} (${incidents.length} records); healthy cars with an incident: ${healthyIncidents.length}; ` +
              `MQTT alerts received by cars: ${carAlerts.length} (healthy cars: ${healthyAlerts.length}); operators' fleet topic: ${fleetMessages.length} messages`,
            ...perCar,
            `services that exited by themselves (restarted after 1 s): ${svcs.unexpectedExits.length ? svcs.unexpectedExits.join('; ') : 'none'}`,
            'Failure behaviour (from the restart command: broker answering / service /readyz 200, and the first record each stage wrote afterwards, by its producer timestamp):',
            ...table,
          ]);
        } finally {
          await stopTails();
        }
      },
      true,
    ),
  );

  test('2. a flood of 400 oversized payloads is dead-lettered while the other cars keep flowing', { timeout: 240_000 }, (t) =>
    check(t, 2, ['ingest'], {}, async ({ prefix, env, svcs, problems, mqtt }) => {
      const readiness = pollReadiness(() => [svcs.get('ingest')]);
      const acked = new Set<string>();
      const sim = createSimulator({ client: trackAcks(await mqtt('cars'), acked), fleet: createFleet({ cars: 30, seed: 2, idPrefix: prefix }), log: silentLogger, durationMs: 30_000 });
      sim.start();
      await sleep(5_000);

      // ~9.6 KB each: a valid reading padded over ingest's 8 KiB limit, all 400 handed over at once.
      const flooder = await mqtt('flood');
      const floodTopic = `vehicles/${prefix}-flood/telemetry`;
      const base = JSON.stringify(reading(Date.now()));
      const payload = JSON.stringify({ ...reading(Date.now()), note: 'x'.repeat(9_600 - base.length - 10) });
      const t0 = Date.now();
      const outcomes = await Promise.all(Array.from({ length: 400 }, () => publishOnce(flooder, floodTopic, payload, 30_000)));
      const publishMs = Date.now() - t0;
      await within('the fleet', sim.done, 60_000);

      let dlq: DeadLetter[] = [];
      let missing: string[] = [];
      await waitFor(
        'the dead letters and every acknowledged reading',
        async () => {
          dlq = (await readDlq(kafka, env.TOPIC_TELEMETRY_DLQ!)).filter((d) => d.mqttTopic === floodTopic);
          const tel = await readTelemetry(kafka, env.SCHEMA_REGISTRY_URL!, env.TOPIC_TELEMETRY!);
          missing = [...acked].filter((k) => !has(tel, k));
          return (dlq.length >= 400 && missing.length === 0) || undefined;
        },
        30_000,
        3_000,
      ).catch(() => {});
      await readiness.stop();
      const polls = readiness.log.get('ingest') ?? [];
      const notReady = polls.filter(([, st]) => st !== 200);
      const stopT0 = Date.now();
      const code = await Promise.race([svcs.stop('ingest'), sleep(30_000).then(() => 'none within 30 s')]);
      const stopMs = Date.now() - stopT0;

      const tooLarge = dlq.filter((d) => d.reason === 'payload.too_large').length;
      const refused = outcomes.filter((o) => !o.acked).length;
      if (refused) problems.push(`${refused} of 400 oversized publishes not acknowledged by the broker`);
      if (tooLarge !== 400) problems.push(`${tooLarge} of 400 oversized payloads in the DLQ as payload.too_large (${dlq.length} dead letters for that topic)`);
      if (missing.length) problems.push(`${missing.length} of ${acked.size} acknowledged readings of the other cars missing from the telemetry topic`);
      if (notReady.length) problems.push(`ingest's /readyz was not 200 in ${notReady.length} of ${polls.length} polls`);
      if (code !== 0 || stopMs > 10_000) problems.push(`ingest on SIGTERM: exit ${code} after ${secs(stopMs)} (expected 0 within 10 s)`);
      say(t, [
        `flood: 400 payloads of ${payload.length} bytes handed over in ${secs(publishMs)} (broker acknowledged ${400 - refused}); dead letters for that topic ${dlq.length}, payload.too_large ${tooLarge}`,
        `other cars: 30 at 1 Hz, ${acked.size} readings acknowledged, missing from the telemetry topic ${missing.length}`,
        `ingest /readyz: 200 in ${polls.length - notReady.length} of ${polls.length} polls; SIGTERM: exit ${code} after ${secs(stopMs)}`,
      ]);
    }),
  );

  test('3. 5,000 cars on 3 partitions: every window of every car is emitted', { timeout: 360_000 }, (t) =>
    check(t, 3, ['ingest', 'windowing'], {}, async ({ prefix, env, problems, mqtt }) => {
      const CARS = 5_000;
      const PERIODS = 4;
      // One MQTT connection publishes for all cars: 4 whole windows and the grace period after them,
      // from the past (event time never ahead of the clock), as fast as the broker acknowledges.
      const startTs = Math.floor((Date.now() - 180_000) / WINDOW.sizeMs) * WINDOW.sizeMs;
      const acked = new Set<string>();
      const t0 = Date.now();
      const sim = createSimulator({
        client: trackAcks(await mqtt('cars'), acked),
        fleet: createFleet({ cars: CARS, seed: 3, idPrefix: prefix }),
        log: silentLogger,
        timeScale: 1_000,
        startTs,
        durationMs: PERIODS * WINDOW.sizeMs + WINDOW.graceMs + 1,
        maxInFlight: 20_000,
      });
      sim.start();
      await within('the fleet', sim.done, 240_000);
      const publishMs = Date.now() - t0;

      const starts = Array.from({ length: PERIODS }, (_, i) => startTs + i * WINDOW.sizeMs);
      const full = (rows: FeatureRow[]): number[] => starts.map((s) => new Set(rows.filter((r) => r.start === s && r.count === 10).map((r) => r.vehicle)).size);
      let rows: FeatureRow[] = [];
      const waitT0 = Date.now();
      await waitFor(
        'every window',
        async () => {
          rows = await readFeatures(kafka, env.SCHEMA_REGISTRY_URL!, env.TOPIC_FEATURES!);
          return full(rows).every((c) => c === CARS) || undefined;
        },
        60_000,
        3_000,
      ).catch(() => {});
      const waitedMs = Date.now() - waitT0;
      const perPeriod = full(rows);
      const dups = rows.length - new Set(rows.map((r) => `${r.vehicle}@${r.start}`)).size;
      const tel = await readTelemetry(kafka, env.SCHEMA_REGISTRY_URL!, env.TOPIC_TELEMETRY!);
      const perPartition = [0, 1, 2].map((p) => [...tel.partitionOf.values()].filter((x) => x === p).length);
      const missing = [...acked].filter((k) => !has(tel, k)).length;
      starts.forEach((s, i) => perPeriod[i] !== CARS && problems.push(`window ${new Date(s).toISOString()}: ${perPeriod[i]} of ${CARS} cars emitted with all 10 readings`));
      if (dups) problems.push(`${dups} windows emitted twice`);
      if (missing) problems.push(`${missing} acknowledged readings missing from the telemetry topic`);
      say(t, [
        `${CARS} cars (per partition ${perPartition.join('/')}): ${acked.size} readings acknowledged in ${secs(publishMs)}, ${tel.distinct} distinct in the telemetry topic`,
        `windows with all 10 readings per window period: ${perPeriod.join(', ')} (expected ${CARS} each); ${rows.length} feature records, ${dups} duplicates; complete ${secs(waitedMs)} after the last publish`,
      ]);
    }),
  );

  test('4. a reading from the future is dead-lettered or contained: the other cars keep their windows', { timeout: 240_000 }, (t) =>
    check(t, 4, ['ingest', 'windowing'], {}, async ({ prefix, env, problems, mqtt }) => {
      const fleet = createFleet({ cars: 24, seed: 4, idPrefix: prefix });
      const poisoned = `${prefix}-0005`;
      const acked = new Set<string>();
      const sim = createSimulator({ client: trackAcks(await mqtt('cars'), acked), fleet, log: silentLogger, durationMs: 57_000 });
      sim.start();
      await sleep(12_000);
      // The car's clock jumps: one reading 23 h ahead (beyond any skew), one 90 s ahead (within it).
      const poisoner = await mqtt('poison');
      const poisonTs = Date.now();
      const far = poisonTs + 23 * 3_600_000;
      const near = poisonTs + 90_000;
      const topic = `vehicles/${poisoned}/telemetry`;
      const farOutcome = await publishOnce(poisoner, topic, JSON.stringify(reading(far)));
      const nearOutcome = await publishOnce(poisoner, topic, JSON.stringify(reading(near)));
      await within('the fleet', sim.done, 90_000);
      const lastTs = Math.max(...[...acked].map((k) => Number(k.split('@')[1])));

      // Every other car's windows that start after the poison and that its own readings closed (end + grace).
      const firstStart = Math.ceil(poisonTs / WINDOW.sizeMs) * WINDOW.sizeMs;
      const starts: number[] = [];
      for (let s = firstStart; s + WINDOW.sizeMs + WINDOW.graceMs <= lastTs; s += WINDOW.sizeMs) starts.push(s);
      const others = fleet.vehicleIds.filter((v) => v !== poisoned);
      let emitted = new Set<string>();
      await waitFor(
        "the other cars' windows",
        async () => {
          emitted = new Set((await readFeatures(kafka, env.SCHEMA_REGISTRY_URL!, env.TOPIC_FEATURES!)).map((f) => `${f.vehicle}@${f.start}`));
          return others.every((v) => starts.every((s) => emitted.has(`${v}@${s}`))) || undefined;
        },
        30_000,
        3_000,
      ).catch(() => {});
      const tel = await readTelemetry(kafka, env.SCHEMA_REGISTRY_URL!, env.TOPIC_TELEMETRY!);
      const dlq = (await readDlq(kafka, env.TOPIC_TELEMETRY_DLQ!)).filter((d) => d.mqttTopic === topic);
      const late = await readLate(kafka, env.TOPIC_TELEMETRY_LATE!);
      const poisonPartition = tel.partitionOf.get(poisoned);
      const lines: string[] = [];
      for (const same of [true, false]) {
        const cars = others.filter((v) => (tel.partitionOf.get(v) === poisonPartition) === same);
        const missing = cars.flatMap((v) => starts.filter((s) => !emitted.has(`${v}@${s}`)).map((s) => `${v}@${s}`));
        const lateReadings = [...late].filter((k) => cars.includes(k.split('@')[0]!) && Number(k.split('@')[1]) >= poisonTs).length;
        const where = same ? `the poisoned car's partition (${poisonPartition})` : 'the other partitions';
        lines.push(
          `cars on ${where}: ${cars.length}, ${cars.length * starts.length - missing.length} of ${cars.length * starts.length} windows emitted, ${lateReadings} of their readings sent to the late topic`,
        );
        if (missing.length) problems.push(`${missing.length} windows after the poison missing for cars on ${where}, e.g. ${missing.slice(0, 4).join(', ')}`);
      }
      const farDead = dlq.find((d) => (JSON.parse(d.value.toString()) as { ts: number }).ts === far);
      const farFate = farDead ? `dead-lettered as ${farDead.reason}` : has(tel, `${poisoned}@${far}`) ? 'accepted into the telemetry topic' : 'neither dead-lettered nor in the telemetry topic';
      if (farDead?.reason !== 'ts.out_of_range') problems.push(`the reading 23 h ahead: ${farFate} (expected a dead letter ts.out_of_range)`);
      if (!has(tel, `${poisoned}@${near}`)) problems.push('the reading 90 s ahead is not in the telemetry topic (within the allowed skew it must be accepted)');
      say(t, [
        `poison: ts now+23h publish ${farOutcome.acked ? 'acknowledged' : 'not acknowledged'}, ${farFate}; ` +
          `ts now+90s publish ${nearOutcome.acked ? 'acknowledged' : 'not acknowledged'}, in the telemetry topic: ${has(tel, `${poisoned}@${near}`)}`,
        `windows checked per car: ${starts.length}, from ${new Date(firstStart).toISOString()} (after the poison) to the last its own readings closed`,
        ...lines,
      ]);
    }),
  );

  test('5. a 1 MB payload and vehicle ids "." and ".." are dead-lettered with their reason', { timeout: 180_000 }, (t) =>
    check(t, 5, ['ingest'], {}, async ({ prefix, env, svcs, problems, mqtt }) => {
      const now = Date.now();
      const big = JSON.stringify({ ...reading(now - 5_000), note: 'x'.repeat(1_048_576 - 600) });
      const cases = [
        { name: `a ${big.length} byte payload`, topic: `vehicles/${prefix}-big/telemetry`, payload: big, reason: 'payload.too_large', key: `${prefix}-big@${now - 5_000}` },
        { name: 'vehicle id "."', topic: 'vehicles/./telemetry', payload: JSON.stringify(reading(now - 4_000)), reason: 'vehicle_id.invalid', key: `.@${now - 4_000}` },
        { name: 'vehicle id ".."', topic: 'vehicles/../telemetry', payload: JSON.stringify(reading(now - 3_000)), reason: 'vehicle_id.invalid', key: `..@${now - 3_000}` },
      ];
      // A valid car publishes before and after them; each case has a connection of its own, so a
      // broker that drops a connection takes only that one down.
      const okClient = await mqtt('ok');
      const ok = [now - 10_000, now - 2_000].map((ts) => ({ key: `${prefix}-ok@${ts}`, payload: JSON.stringify(reading(ts)) }));
      const okOutcomes = [await publishOnce(okClient, `vehicles/${prefix}-ok/telemetry`, ok[0]!.payload)];
      const outcomes: PublishOutcome[] = [];
      for (const [i, c] of cases.entries()) outcomes.push(await publishOnce(await mqtt(`case${i}`), c.topic, c.payload, 10_000));
      okOutcomes.push(await publishOnce(okClient, `vehicles/${prefix}-ok/telemetry`, ok[1]!.payload));

      let dlq: DeadLetter[] = [];
      let tel: Telemetry | undefined;
      await waitFor(
        'the dead letters and the valid readings',
        async () => {
          dlq = await readDlq(kafka, env.TOPIC_TELEMETRY_DLQ!);
          tel = await readTelemetry(kafka, env.SCHEMA_REGISTRY_URL!, env.TOPIC_TELEMETRY!);
          return (cases.every((c) => dlq.some((d) => d.mqttTopic === c.topic)) && ok.every((o) => has(tel, o.key))) || undefined;
        },
        20_000,
        2_000,
      ).catch(() => {});
      const lines = cases.map((c, i) => {
        const o = outcomes[i]!;
        const dead = dlq.find((d) => d.mqttTopic === c.topic);
        const publish = o.acked ? `acknowledged in ${secs(o.ms)}` : o.timedOut ? 'callback did not complete within 10 s' : `refused: ${o.error}`;
        const fate = dead ? `dead-lettered as ${dead.reason} (${dead.value.length} bytes kept)` : has(tel, c.key) ? 'accepted as a reading' : 'neither dead-lettered nor in the telemetry topic';
        if (o.timedOut) problems.push(`${c.name}: the publisher's callback did not complete`);
        if (dead?.reason !== c.reason) problems.push(`${c.name}: ${fate} (expected a dead letter ${c.reason})`);
        return `${c.name}: publish ${publish}; ${fate}`;
      });
      const okMissing = ok.filter((o) => !has(tel, o.key)).length;
      if (okOutcomes.some((o) => !o.acked) || okMissing) problems.push(`the valid readings around them: ${okMissing} of 2 missing from the telemetry topic`);
      const ready = await svcs.get('ingest').ready();
      if (!ready) problems.push('ingest is not ready afterwards');
      say(t, [...lines, `valid readings before and after: ${2 - okMissing} of 2 in the telemetry topic; ingest ready afterwards: ${ready}`]);
    }),
  );

  test('6. /readyz tells the truth during a Kafka and a Mosquitto outage and recovers by itself', { timeout: 300_000 }, (t) =>
    check(t, 6, STAGES, {}, async ({ prefix, svcs, problems, mqtt }) => {
      const sim = createSimulator({ client: await mqtt('cars'), fleet: createFleet({ cars: 10, seed: 6, idPrefix: prefix }), log: silentLogger, maxInFlight: 100_000 });
      sim.start();
      await sleep(3_000);
      const poll = pollReadiness(() => STAGES.map((s) => svcs.get(s)), 500);
      const between = (s: string, from: number, to = Infinity) => (poll.log.get(s) ?? []).filter(([at]) => at >= from && at <= to);
      const last = (s: string) => poll.log.get(s)?.at(-1)?.[1];
      /** ms after `from` from which every poll answered 200 (undefined: not by the end). */
      const settled = (s: string, from: number): number | undefined => {
        const polls = between(s, from);
        let i = polls.length;
        while (i > 0 && polls[i - 1]![1] === 200) i--;
        return i < polls.length ? polls[i]![0] - from : undefined;
      };

      const kafkaDown = Date.now();
      await infra.kill('kafka');
      await sleep(20_000);
      const kafkaUp = Date.now();
      await infra.up();
      await waitFor('every service ready again', () => STAGES.every((s) => last(s) === 200) || undefined, 120_000, 250).catch(() => {});
      await sleep(1_000);
      const lines = ['Kafka killed (kill -9), restarted 20 s later; per service: first 503 after the kill / polls not 200 during the outage / 200 for good after the restart'];
      for (const s of STAGES) {
        const during = between(s, kafkaDown, kafkaUp);
        const bad = during.filter(([, st]) => st !== 200);
        const back = settled(s, kafkaUp);
        lines.push(`  ${s}: ${bad.length ? secs(bad[0]![0] - kafkaDown) : 'never'} / ${bad.length} of ${during.length} / ${secs(back)}`);
        if (!bad.length) problems.push(`${s}: /readyz stayed 200 during the 20 s Kafka outage`);
        if (back === undefined) problems.push(`${s}: /readyz not 200 within 120 s after Kafka came back`);
      }

      const mqttDown = Date.now();
      await infra.kill('mosquitto');
      await sleep(8_000);
      const mqttUp = Date.now();
      await infra.up();
      await waitFor('ingest ready again', () => last('ingest') === 200 || undefined, 60_000, 250).catch(() => {});
      await sleep(1_000);
      await poll.stop();
      for (const s of ['ingest', 'dispatch']) {
        const during = between(s, mqttDown, mqttUp);
        const bad = during.filter(([, st]) => st !== 200).length;
        lines.push(`Mosquitto killed, restarted 8 s later: ${s} not 200 in ${bad} of ${during.length} polls during the outage, 200 for good ${secs(settled(s, mqttUp))} after the restart`);
        if (s === 'ingest' && !bad) problems.push('ingest: /readyz stayed 200 during the Mosquitto outage');
        if (s === 'ingest' && settled(s, mqttUp) === undefined) problems.push('ingest: /readyz not 200 within 60 s after Mosquitto came back');
      }
      await within('the fleet', sim.stop(), 30_000).catch(() => {});
      say(t, lines);
    }),
  );
});
