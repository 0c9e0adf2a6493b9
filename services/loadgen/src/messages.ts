/**
 * What the coordinator and its worker processes say to each other over the fork IPC channel.
 *
 *   coordinator -> worker   init (its connections and settings), start (the clock and its cars'
 *                           failures, once every worker is ready), close (clear state, disconnect,
 *                           exit)
 *   worker -> coordinator   issuing (progress of its certificates), ready (identities issued, may
 *                           start), stats (before every second of the run: counters, new alerts,
 *                           CPU and memory), published (publishing is over and every publish
 *                           settled), final (counters, acknowledged readings per car, the ramp's
 *                           timings), fatal
 */
import type { Mode } from './args.js';
import type { ConnectionSpec } from './partition.js';
import type { Clock, PlannedFailure } from './plan.js';

export interface WorkerInit {
  type: 'init';
  worker: number;
  mode: Mode;
  connections: ConnectionSpec[];
  durationMs: number;
  rateHz: number;
  jitter: number;
  /** Connections per second for this worker. */
  connectRate: number;
  /** Most connections of this worker opened and not yet connected for the first time. */
  connectPending: number;
  seed: number;
  mqttUrl: string;
  /** Over TLS: the fleet CA's folder; the worker issues every connection's certificate from it. */
  pkiDir?: string;
  mqttUsername?: string;
  mqttPassword?: string;
}

export interface WorkerStart {
  type: 'start';
  clock: Clock;
  /** Failures of this worker's cars. */
  failures: PlannedFailure[];
}

/** How long a worker took to issue its connections' certificates (in memory, before the run). */
export interface IdentityStats {
  kind: 'car' | 'gateway';
  issued: number;
  /** Loading the x509 library and opening the CA (once per process, not in wallMs). */
  setupMs: number;
  wallMs: number;
  /** CPU of the worker process while issuing (user + system). */
  cpuMs: number;
  /** Making the connections' TLS contexts from them (OpenSSL parsing the PEM), after issuing. */
  contextMs: number;
}

/** The connect ramp as one worker saw it. */
export interface RampStats {
  /** Epoch ms its first connection was opened (null: none was). */
  firstOpenAt: number | null;
  /** Epoch ms the last of its connections got its first CONNACK (null: not all did). */
  allUpAt: number | null;
  /** Open -> first CONNACK per connection that got one, ms (TCP, TLS handshake and MQTT CONNECT). */
  connectMs: number[];
}

export interface Counters {
  /** Connections of this worker to open. */
  target: number;
  /** Connected now. */
  up: number;
  /** Successful CONNACKs, reconnects included. */
  connects: number;
  connectErrors: number;
  /** connectErrors by kind (connect-errors.ts). */
  errorsTimeout: number;
  errorsRefused: number;
  errorsReset: number;
  errorsTls: number;
  errorsOther: number;
  disconnects: number;
  /** Readings handed to the MQTT client. */
  sent: number;
  /** PUBACK received with success. */
  acked: number;
  /** PUBACK "no matching subscribers" (MQTT 5 reason 16): nobody (no ingest) got it. */
  unrouted: number;
  /** Publish failed (error or refusal). */
  failed: number;
  /** Distinct alerts (incident id + revision) received by cars. */
  alerts: number;
  duplicateAlerts: number;
  receipts: number;
  receiptFailures: number;
  maintenance: number;
}

export const zeroCounters = (): Counters => ({
  target: 0,
  up: 0,
  connects: 0,
  connectErrors: 0,
  errorsTimeout: 0,
  errorsRefused: 0,
  errorsReset: 0,
  errorsTls: 0,
  errorsOther: 0,
  disconnects: 0,
  sent: 0,
  acked: 0,
  unrouted: 0,
  failed: 0,
  alerts: 0,
  duplicateAlerts: 0,
  receipts: 0,
  receiptFailures: 0,
  maintenance: 0,
});

/** One alert as a car received it (first copy of an incident revision). */
export interface AlertEvent {
  vehicleId: string;
  incidentId: string;
  revision: number | null;
  severity: string | null;
  area: string | null;
  /** The alert payload's opened_at: start of the incident's first anomalous window (event time). */
  openedAt: number | null;
  /** Epoch ms on arrival. */
  receivedAt: number;
}

export interface Usage {
  /** process.cpuUsage(): user + system microseconds since the process started. */
  cpuUs: number;
  rss: number;
}

export type WorkerMessage =
  | { type: 'issuing'; worker: number; done: number; total: number }
  | { type: 'ready'; worker: number; identities: IdentityStats | null; usage: Usage }
  | { type: 'stats'; worker: number; /** The whole second of the run it was sent for. */ second: number; counters: Counters; alerts: AlertEvent[]; usage: Usage }
  | { type: 'published'; worker: number }
  | {
      type: 'final';
      worker: number;
      counters: Counters;
      alerts: AlertEvent[];
      usage: Usage;
      ackedByCar: Record<string, number>;
      ramp: RampStats;
      /** Cars still holding a retained maintenance state that they may not clear themselves (TLS identities). */
      retained: string[];
    }
  | { type: 'fatal'; worker: number; message: string };

export type CoordinatorMessage = WorkerInit | WorkerStart | { type: 'close' };
