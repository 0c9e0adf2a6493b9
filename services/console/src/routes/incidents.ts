/**
 * Incidents:
 *   GET  /api/incidents                 open ones and those closed lately, newest change first
 *   GET  /api/incidents/<id>
 *   POST /api/incidents/<id>/ack | /resolve    JSON or form {note?}; role operator or admin
 * An action becomes an IncidentCommandRecord on maintenance.incident-commands (key vehicle_id,
 * acks=all) and is audited before the 202; the incidents service applies it and the new revision
 * comes back on the incidents topic (and the live view).
 */
import { randomUUID } from 'node:crypto';
import type { Producer } from 'kafkajs';
import { isIncidentOpen, type AvroCodec, type Counters, type IncidentAction, type IncidentCommandRecord, type IncidentRecord, type Logger } from '@pitwall/common';
import type { AuditTrail } from '../audit.js';
import type { Auth, SignedIn } from '../auth.js';
import { HttpError, formOrJson, json } from '../http.js';
import { METRICS } from '../metrics.js';
import { can } from '../passwords.js';
import type { Params, Route } from '../router.js';
import type { IncidentStore } from '../state.js';

const NOTE_LIMIT = 500;

export interface IncidentRouteDeps {
  auth: Auth;
  audit: AuditTrail;
  incidents: IncidentStore;
  /** What GET /api/incidents (and a live snapshot) lists. */
  listIncidents(): IncidentRecord[];
  commandsTopic: string;
  commandCodec: AvroCodec<IncidentCommandRecord>;
  /** The connected producer; throws a 503 HttpError while there is none. */
  producer(): Producer;
  now: () => number;
  counters: Counters;
  log: Logger;
}

export function incidentRoutes(deps: IncidentRouteDeps): Route<SignedIn>[] {
  const { auth, audit, incidents, counters, log } = deps;

  /** The command's reply body; 404 for an unknown incident, 409 when the action does not apply to it now. */
  const writeCommand = async (incidentId: string, action: IncidentAction, operator: string, note: string | null) => {
    const incident = incidents.get(incidentId);
    if (!incident) throw new HttpError(404, 'not_found', `no incident ${incidentId}`);
    if (action === 'ACKNOWLEDGE' && incident.status !== 'OPEN') {
      throw new HttpError(409, 'conflict', `incident ${incidentId} is ${incident.status}; only an OPEN incident can be acknowledged`);
    }
    if (action === 'RESOLVE' && !isIncidentOpen(incident)) throw new HttpError(409, 'conflict', `incident ${incidentId} is already ${incident.status}`);
    const producer = deps.producer();
    const command: IncidentCommandRecord = {
      command_id: randomUUID(),
      incident_id: incident.incident_id,
      vehicle_id: incident.vehicle_id,
      action,
      operator,
      note,
      issued_at: deps.now(),
    };
    await producer.send({
      topic: deps.commandsTopic,
      acks: -1,
      messages: [{ key: incident.vehicle_id, value: deps.commandCodec.encode(command), headers: { 'pitwall.source': 'console' } }],
    });
    counters.inc(METRICS.commandsWritten, 1, action);
    log.info('incident command written', { commandId: command.command_id, incidentId, vehicleId: incident.vehicle_id, action, operator, revision: incident.revision });
    return { command_id: command.command_id, incident_id: incidentId, action, revision: incident.revision };
  };

  const act =
    (action: 'acknowledge' | 'resolve', command: IncidentAction) =>
    async ({ req, res, principal: { session, role } }: SignedIn, { id }: Params): Promise<void> => {
      const incidentId = id!;
      const incident = incidents.get(incidentId);
      const subject = { incident_id: incidentId, ...(incident ? { vehicle_id: incident.vehicle_id } : {}) };
      if (!can(role, 'act')) {
        const entry = { user: session.user, role, action, outcome: 'forbidden', client: auth.clientOf(req), session: session.sid, ...subject } as const;
        return auth.forbid(res, entry, `the ${role} role may not ${action} incidents (operator or admin only)`);
      }
      const body = await formOrJson(req);
      let note: string | null = null;
      if (body.note !== undefined && body.note !== null) {
        if (typeof body.note !== 'string') throw new HttpError(400, 'bad_request', 'note must be a string');
        note = body.note.trim() === '' ? null : body.note.trim();
        if (note !== null && note.length > NOTE_LIMIT) throw new HttpError(400, 'bad_request', `note is longer than ${NOTE_LIMIT} characters`);
      }
      const out = await writeCommand(incidentId, command, session.user, note);
      await audit.record({ user: session.user, role, action, outcome: 'ok', client: auth.clientOf(req), session: session.sid, ...subject, command_id: out.command_id, note });
      json(res, 202, out);
    };

  return [
    { method: 'GET', path: '/api/incidents', handle: ({ res }) => json(res, 200, { incidents: deps.listIncidents() }) },
    {
      method: 'GET',
      path: '/api/incidents/:id',
      handle: ({ res }, { id }) => {
        const i = incidents.get(id!);
        if (!i) throw new HttpError(404, 'not_found', `no incident ${id}`);
        json(res, 200, { incident: i });
      },
    },
    { method: 'POST', path: '/api/incidents/:id/ack', handle: act('acknowledge', 'ACKNOWLEDGE') },
    { method: 'POST', path: '/api/incidents/:id/resolve', handle: act('resolve', 'RESOLVE') },
  ];
}
