/**
 * Handler for a maintenance alert: the MQTT publications it becomes. Pure.
 *
 * JSON payload (schema "pitwall.alert.v1"), the same on both topics:
 *   { schema, alertId, vehicleId, windowStart, windowEnd (epoch ms), score, threshold,
 *     model: { name, version }, contributors: [{ sensor, share, component, action }],
 *     summary (one readable line), createdAt (epoch ms) }
 */
import type { AlertRecord } from '@pitwall/common';

export type { AlertRecord };

export interface Publication {
  topic: string;
  payload: string;
}

export function alertPayload(a: AlertRecord): Record<string, unknown> {
  const top = a.contributors[0];
  // Sensors with a negligible share (under 5%) would only add noise to the line; the top one always shows.
  const named = a.contributors.filter((c, i) => i === 0 || c.share >= 0.05);
  const summary = top
    ? `${top.component}: ${named.map((c) => `${c.sensor} ${Math.round(c.share * 100)}%`).join(', ')}. ${top.action}`
    : `anomaly score ${a.score.toFixed(2)} over threshold ${a.threshold.toFixed(2)}`;
  return {
    schema: 'pitwall.alert.v1',
    alertId: a.alert_id,
    vehicleId: a.vehicle_id,
    windowStart: a.window_start,
    windowEnd: a.window_end,
    score: a.score,
    threshold: a.threshold,
    model: { name: a.model_name, version: a.model_version },
    contributors: a.contributors.map((c) => ({ sensor: c.sensor, share: c.share, component: c.component, action: c.action })),
    summary,
    createdAt: a.created_at,
  };
}

export function alertPublications(a: AlertRecord, fleetTopic: string): Publication[] {
  const payload = JSON.stringify(alertPayload(a));
  return [
    { topic: `vehicles/${a.vehicle_id}/alerts`, payload },
    { topic: fleetTopic, payload },
  ];
}
