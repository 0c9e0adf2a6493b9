/**
 * The MQTT brokers the contract suites run against, behind one interface: Mosquitto (the committed
 * configuration) and HiveMQ CE (infra/hivemq: the same identities and ACL in an embedded
 * extension). Each runs privately for a test: its own port, data and log.
 */
export interface PrivateBroker {
  readonly kind: BrokerKind;
  readonly url: string;
  readonly port: number;
  /** How long after a client's subscription the broker has it on disk (kill -9 then keeps it). */
  readonly savedAfterMs: number;
  /** Starts the broker; resolves once it accepts connections. */
  start(): Promise<void>;
  /** kill -9; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Graceful restart (SIGTERM, then start): the ACL and CRL are read again. */
  reload(): Promise<void>;
  running(): boolean;
  /** Kills it, keeps its log in test-artifacts and deletes its folder. */
  stop(): Promise<void>;
}

export type BrokerKind = 'mosquitto' | 'hivemq';

export interface BrokerImplementation {
  readonly kind: BrokerKind;
  start(id: string): Promise<PrivateBroker>;
}

const ALL: readonly BrokerImplementation[] = [
  { kind: 'mosquitto', start: async (id) => (await import('./mosquitto.js')).startPrivateMosquitto(id) },
  { kind: 'hivemq', start: async (id) => (await import('./hivemq.js')).startPrivateHiveMQ(id) },
];

/**
 * The broker implementations the contract suites run against, for `for (const broker of BROKERS)
 * describe(...)`: all of them, or those named in PITWALL_TEST_BROKERS (`mosquitto,hivemq`).
 */
export const BROKERS: readonly BrokerImplementation[] = selectBrokers(process.env.PITWALL_TEST_BROKERS);

export function selectBrokers(names: string | undefined): readonly BrokerImplementation[] {
  if (names === undefined || names.trim() === '') return ALL;
  const wanted = names.split(',').map((n) => n.trim());
  const unknown = wanted.filter((n) => !ALL.some((b) => b.kind === n));
  if (unknown.length > 0) throw new Error(`PITWALL_TEST_BROKERS: unknown broker ${unknown.join(', ')} (known: ${ALL.map((b) => b.kind).join(', ')})`);
  return ALL.filter((b) => wanted.includes(b.kind));
}
