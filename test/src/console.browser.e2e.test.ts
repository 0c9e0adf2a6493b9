/**
 * The console as an operator uses it, in headless Chromium (playwright-core + /usr/bin/chromium),
 * on the whole pipeline: ingest, windowing, scoring, incidents, dispatch and the console as real
 * processes, a simulated fleet with one car overheating. The operator signs in, sees the incident
 * appear in the list without reloading, opens it (sensor charts with the contributing sensor
 * first), acknowledges it with a note and sees the ACKNOWLEDGED state arrive; the record on
 * maintenance.incidents names the operator; filters follow the URL; resolving closes it; a viewer
 * signed in next to it gets no action buttons. Accounts are hashed entries, as CONSOLE_USERS requires.
 * Screenshots: test-artifacts/console-*.png.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Kafka, logLevel } from 'kafkajs';
import { createCarInbox, createFleet, createSimulator, type CarInbox, type FleetClient, type Simulator } from '@pitwall/simulator';
import { createAvroCodec, defaultSchemasDir, loadSchemaFile, silentLogger, type IncidentRecord } from '@pitwall/common';
import { collect } from '@pitwall/common/testing';
import { consoleUsers } from './support/console-users.js';
import { adminSchemaStore, ARTIFACTS, freePort, INFRA, isolatedEnv, kafkaClientConfig, runId, type ServiceProcess, startService, waitFor, waitReady } from './support/stack.js';
import { clearRetained, connectTestCars } from './support/identities.js';

const id = runId();
// Incidents must stay open while the operator looks at them.
// The fleet runs 10x faster than the wall clock, so its event time gets minutes ahead of ingest's clock.
// Drift records every 5 s (default a minute), so the drift panels fill while the fleet drives.
const env = { ...isolatedEnv(id), INCIDENTS_CLEAR_AFTER_WINDOWS: '100', INGEST_MAX_FUTURE_SKEW_MS: '600000', SCORING_DRIFT_REPORT_MS: '5000' };
const prefix = `e2e${id}`;
const CARS = 6;
const FAILING = `${prefix}-0002`;
const OPERATOR = 'jane.ops';
const PASSWORD = 'correct horse battery';
const VIEWER = 'vic.viewer';
const VIEWER_PASSWORD = 'read only please';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('console in a browser, on the full pipeline', { timeout: 420_000 }, () => {
  const services: ServiceProcess[] = [];
  let consoleSvc: ServiceProcess | undefined;
  let base = '';
  let browser: Browser | undefined;
  let page: Page;
  let mqtt: FleetClient | undefined;
  let inbox: CarInbox | undefined;
  let sim: Simulator | undefined;

  before(async () => {
    for (const name of ['ingest', 'windowing', 'scoring', 'incidents', 'dispatch']) services.push(await startService(name, env, `console-browser-${id}`));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const users = await consoleUsers([
      { name: OPERATOR, role: 'operator', password: PASSWORD },
      { name: VIEWER, role: 'viewer', password: VIEWER_PASSWORD },
    ]);
    consoleSvc = await startService('console', { ...env, CONSOLE_PORT: String(port), CONSOLE_USERS: users }, `console-browser-${id}`);
    await waitReady(services, 120_000);
    await Promise.race([
      waitFor(`console ready (log: ${consoleSvc.logFile})`, async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200, 120_000),
      consoleSvc.exited.then((code) => {
        throw new Error(`console exited with ${code}; see ${consoleSvc!.logFile}`);
      }),
    ]);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  });

  after(async () => {
    await sim?.stop().catch(() => {});
    inbox?.stop();
    if (mqtt) {
      // Leave no retained maintenance state behind on the shared broker.
      await clearRetained(
        INFRA.mqtt,
        Array.from({ length: CARS }, (_, i) => `vehicles/${prefix}-${String(i + 1).padStart(4, '0')}/maintenance`),
      ).catch(() => {});
      await mqtt.endAsync().catch(() => {});
    }
    await browser?.close();
    const codes = await Promise.all([...services, ...(consoleSvc ? [consoleSvc] : [])].map((s) => s.stop()));
    assert.deepEqual(
      codes,
      codes.map(() => 0),
      'every service shuts down cleanly on SIGTERM',
    );
  });

  test('sign in, see the incident arrive live, open it, acknowledge it with a note', async () => {
    // ---- sign in
    await page.goto(`${base}/`);
    assert.match(page.url(), /\/login/, 'pages need a session');
    await page.fill('#user', OPERATOR);
    await page.fill('#password', 'not the password');
    await page.click('#sign-in');
    await page.waitForSelector('#login-message:not([hidden])');
    await page.screenshot({ path: path.join(ARTIFACTS, 'console-login.png') });
    assert.match((await page.textContent('#login-message')) ?? '', /wrong password/i);
    await page.fill('#user', OPERATOR);
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForURL(`${base}/`), page.click('#sign-in')]);
    await page.waitForSelector('#live[data-state="live"]', { timeout: 30_000 });
    assert.equal(await page.textContent('#user'), OPERATOR);
    await page.waitForSelector('#incidents .empty', { timeout: 10_000 });
    // A marker that a reload would wipe: the incident must arrive over the stream.
    await page.evaluate(() => ((globalThis as unknown as { __noReload: boolean }).__noReload = true));

    // ---- the fleet drives, one car overheats
    const start = Date.now();
    const fleet = createFleet({
      cars: CARS,
      seed: 11,
      idPrefix: prefix,
      failures: [
        { vehicleId: FAILING, mode: 'coolant_overheat', onsetTs: start + 30_000, rampMs: 30_000 },
        // A second incident elsewhere, so the list has more than one row to filter.
        { vehicleId: `${prefix}-0005`, mode: 'tire_leak', onsetTs: start + 40_000, rampMs: 60_000 },
      ],
    });
    mqtt = await connectTestCars(INFRA.mqtt, fleet.vehicleIds, id);
    inbox = createCarInbox({ client: mqtt, vehicleIds: fleet.vehicleIds, log: silentLogger, receipts: true, onAlert: () => {} });
    await inbox.start();
    // 5 minutes of event time at 1 Hz per car, compressed 10x (as in pipeline.e2e.test.ts).
    sim = createSimulator({ client: mqtt, fleet, log: silentLogger, ratePerCarHz: 1, timeScale: 10, startTs: start, durationMs: 300_000 });
    sim.start();

    // Vehicles show up as their first windows are scored.
    await page.waitForSelector(`#vehicles a[data-vehicle="${FAILING}"]`, { timeout: 120_000 });

    const row = `#incidents tr[data-vehicle="${FAILING}"]`;
    await page.waitForSelector(row, { timeout: 180_000 });
    assert.equal(await page.evaluate(() => (globalThis as unknown as { __noReload?: boolean }).__noReload), true, 'the incident arrived without a reload');
    assert.equal(await page.getAttribute(row, 'data-status'), 'OPEN');
    assert.match((await page.textContent(`${row} td:nth-child(3)`)) ?? '', /cooling/);
    // The car tile turned to attention or critical.
    await page.waitForSelector(`#vehicles a[data-vehicle="${FAILING}"]:is([data-health="attention"], [data-health="critical"])`, { timeout: 10_000 });
    const incidentId = (await page.getAttribute(row, 'data-incident'))!;
    // The fleet's drift against the committed model's reference (the panel refreshes every 30 s).
    const fleetDrift = '#fleet-drift .drift-model[data-model="pitwall-ae"][data-role="active"][data-available="true"]';
    await page.waitForSelector(fleetDrift, { timeout: 90_000 });
    assert.match((await page.textContent('#fleet-max-psi')) ?? '', /^\d+(\.\d+)?$/);
    assert.ok((await page.locator(`${fleetDrift} tbody tr`).count()) >= 1, 'top drifting features listed');
    await page.waitForTimeout(2500); // let the row's highlight fade for the screenshot
    await page.screenshot({ path: path.join(ARTIFACTS, 'console-list.png') });

    // ---- the vehicle page
    await page.click(row);
    await page.waitForURL(new RegExp(`/vehicles/${FAILING}\\?incident=`));
    await page.waitForSelector('#incident-status[data-status="OPEN"]');
    // Charts from vehicle.telemetry, the contributing sensor first and marked.
    await page.waitForSelector('#charts .chart-card.contributor .uplot', { timeout: 90_000 });
    const firstChart = await page.getAttribute('#charts .chart-card:first-child', 'data-sensor');
    assert.equal(firstChart, 'coolant_temp', 'the top contributor is charted first');
    assert.match((await page.textContent('#charts-meta')) ?? '', /[1-9]\d* readings/);
    assert.equal(await page.isVisible('#other-sensors'), true, 'the other sensors are one click away');
    // The car's own drift: its last windows against the training data, next to the typical car's.
    await page.waitForSelector('#vehicle-max-psi', { timeout: 90_000 });
    assert.match((await page.textContent('#vehicle-max-psi')) ?? '', /^\d+(\.\d+)?$/);
    assert.ok((await page.locator('#vehicle-drift tbody tr').count()) >= 1);

    // ---- acknowledge with a note
    const note = `On it: car ${FAILING} booked for a cooling check (${id}).`;
    await page.fill('#note', note);
    await page.click('#ack');
    // Pending until the incidents service has written the new revision (it may be very quick).
    await page.waitForSelector('#incident-status[data-status="ACKNOWLEDGED"]', { timeout: 90_000 });
    assert.match((await page.textContent('#incident-status')) ?? '', new RegExp(`by ${OPERATOR.replace('.', '\\.')}`));
    await page.waitForSelector('#pending', { state: 'detached', timeout: 10_000 });
    await page.waitForSelector(`#history .note:text-is("${note}")`, { timeout: 10_000 });
    assert.equal(await page.isDisabled('#ack'), true, 'an acknowledged incident cannot be acknowledged again');
    assert.equal(await page.isEnabled('#resolve'), true);
    await page.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0));
    await page.screenshot({ path: path.join(ARTIFACTS, 'console-vehicle.png') });
    await page.screenshot({ path: path.join(ARTIFACTS, 'console-vehicle-full.png'), fullPage: true });

    // ---- the record on maintenance.incidents
    const acked = await acknowledgedRecord(incidentId);
    assert.equal(acked.vehicle_id, FAILING);
    assert.equal(acked.acknowledged_by, OPERATOR);
    assert.ok(acked.acknowledged_at! >= start);
    const entry = acked.history.find((h) => h.change === 'ACKNOWLEDGED');
    assert.deepEqual({ by: entry?.by, note: entry?.note }, { by: OPERATOR, note });

    // Back to the list: the row shows the new state, still without a reload.
    await page.click('a.brand');
    await page.waitForSelector(`#incidents tr[data-incident="${incidentId}"][data-status="ACKNOWLEDGED"]`, { timeout: 10_000 });
    // Filters live in the URL: hiding acknowledged incidents hides this one.
    await page.click('button.chip[data-filter="status"][data-value="ACKNOWLEDGED"]');
    await page.waitForURL(/[?&]status=OPEN(&|$)/);
    await page.waitForSelector(`#incidents tr[data-incident="${incidentId}"]`, { state: 'detached', timeout: 10_000 });
    await page.reload();
    await page.waitForSelector('button.chip[data-filter="status"][data-value="ACKNOWLEDGED"][aria-pressed="false"]', { timeout: 30_000 });

    // Resolve it from its page: closed, no further action offered.
    await page.goto(`${base}/vehicles/${FAILING}?incident=${incidentId}`);
    await page.waitForSelector('#incident-status[data-status="ACKNOWLEDGED"]', { timeout: 30_000 });
    await page.fill('#note', 'Thermostat replaced.');
    await page.click('#resolve');
    await page.waitForSelector('#incident-status[data-status="RESOLVED"]', { timeout: 90_000 });
    assert.equal(await page.isDisabled('#resolve'), true);
    assert.equal(await page.isDisabled('#note'), true);

    // A viewer sees the incident's page without the buttons its role cannot use (the operator's
    // page above shows them, disabled once resolved).
    assert.equal(await page.isVisible('#resolve'), true);
    const viewerPage = await (await browser!.newContext({ viewport: { width: 1366, height: 768 } })).newPage();
    await viewerPage.goto(`${base}/login`);
    await viewerPage.fill('#user', VIEWER);
    await viewerPage.fill('#password', VIEWER_PASSWORD);
    await Promise.all([viewerPage.waitForURL(`${base}/`), viewerPage.click('#sign-in')]);
    await viewerPage.waitForSelector('#role:text-is("viewer")', { timeout: 30_000 });
    await viewerPage.goto(`${base}/vehicles/${FAILING}?incident=${incidentId}`);
    await viewerPage.waitForSelector('#incident-status', { timeout: 30_000 });
    await viewerPage.waitForSelector('#read-only', { timeout: 10_000 });
    assert.equal(await viewerPage.isVisible('#ack'), false, 'no acknowledge button for a viewer');
    assert.equal(await viewerPage.isVisible('#resolve'), false);
    await viewerPage.context().close();
  });
});

/** Reads maintenance.incidents (read_committed) until the incident is ACKNOWLEDGED. */
async function acknowledgedRecord(incidentId: string): Promise<IncidentRecord> {
  const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
  const codec = await createAvroCodec<IncidentRecord>(adminSchemaStore(), `${env.TOPIC_INCIDENTS}-value`, await loadSchemaFile(defaultSchemasDir(), 'incident', 1));
  // A tombstone (no value) is no revision of the incident.
  const incidents = await collect(kafka, { topic: env.TOPIC_INCIDENTS, decode: codec, filter: (r) => r.value !== null, readUncommitted: false });
  try {
    return await incidents.waitFor(() => incidents.values().find((i) => i.incident_id === incidentId && i.status === 'ACKNOWLEDGED'), 60_000, `ACKNOWLEDGED revision of ${incidentId}`);
  } finally {
    await incidents.stop();
  }
}
