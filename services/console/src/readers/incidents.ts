/**
 * maintenance.incidents (compacted; Avro IncidentRecord keyed by incident_id), read from its
 * beginning and then followed with a throw-away group (nothing committed), into the in-memory
 * incident store. A record newer than the known revision is broadcast as `incident`; a tombstone
 * (null value) forgets the incident and is broadcast as `removed`. Either way the vehicle's summary
 * changes.
 */
import type { Batch, Kafka } from 'kafkajs';
import { startTopicReader, watchConsumer, watchConsumerLag, type AvroCodec, type Counters, type IncidentRecord, type Logger, type Readiness, type Registry, type TopicReader } from '@pitwall/common';
import type { Live } from '../live.js';
import { METRICS } from '../metrics.js';
import type { IncidentStore } from '../state.js';

export interface IncidentHandlerDeps {
  codec: AvroCodec<IncidentRecord>;
  incidents: IncidentStore;
  live: Pick<Live, 'broadcast' | 'vehicleChanged'>;
  counters: Counters;
  log: Logger;
}

export function createIncidentHandler(deps: IncidentHandlerDeps): (batch: Pick<Batch, 'messages'>) => Promise<void> {
  const { incidents, live, counters, log } = deps;
  return async (batch) => {
    for (const m of batch.messages) {
      counters.inc(METRICS.incidentsRead);
      if (m.value === null) {
        const gone = incidents.remove(m.key?.toString() ?? '');
        if (gone) {
          live.broadcast('removed', { incident_id: gone.incident_id, vehicle_id: gone.vehicle_id });
          live.vehicleChanged(gone.vehicle_id);
        }
        continue;
      }
      let incident: IncidentRecord;
      try {
        incident = await deps.codec.decode(m.value);
      } catch (err) {
        counters.inc(METRICS.undecodable, 1, 'incident');
        log.warn('undecodable incident record skipped', { offset: m.offset, err });
        continue;
      }
      if (incidents.apply(incident)) {
        live.broadcast('incident', incident);
        live.vehicleChanged(incident.vehicle_id);
      }
    }
  };
}

/** Its consumer counts for readiness and exports its lag. */
export function startIncidentReader(kafka: Kafka, opts: { topic: string; groupIdPrefix: string; readiness: Readiness; metrics: Registry } & IncidentHandlerDeps): Promise<TopicReader> {
  return startTopicReader(kafka, {
    topic: opts.topic,
    groupIdPrefix: `${opts.groupIdPrefix}-incidents`,
    follow: true,
    log: opts.log,
    onConsumer: (c) => {
      watchConsumer(opts.readiness, c, 'incidents consumer');
      watchConsumerLag(opts.metrics, c);
    },
    onBatch: createIncidentHandler(opts),
  });
}
