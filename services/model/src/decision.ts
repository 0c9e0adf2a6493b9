/**
 * The serving rule for one scored window, shared by the scoring service, `npm run replay` and
 * `npm run evaluate --csv`: the window is anomalous when score > threshold (isAnomalous) or the
 * stuck-sensor detector called one of its sensors stuck. A stuck window keeps the model's score and
 * threshold; its contributors list the stuck sensors first (stuckContributors), then the model's
 * own when the model alerted too.
 */
import type { AlertRecord, ScoreRecord } from '@pitwall/common';
import type { ModelMetadata } from './model-dir.js';
import { alertId, alertOf, buildScore, type Scored, type WindowKey } from './score.js';
import { stuckContributors, type StuckVerdict } from './stuck-sensor.js';

export interface WindowDecision {
  score: ScoreRecord;
  /** The alert to raise, with the score's contributors; null when the window is normal. */
  alert: AlertRecord | null;
}

export function decideWindow(key: WindowKey, scored: Scored, model: Pick<ModelMetadata, 'name' | 'version' | 'threshold'>, stuck: StuckVerdict, now: number): WindowDecision {
  const score = buildScore(key, scored, model, now);
  if (stuck.length) {
    score.contributors = [...stuckContributors(stuck), ...(score.anomalous ? score.contributors : [])];
    score.anomalous = true;
    score.alert_id = alertId(key, model.name, model.version);
  }
  if (!score.anomalous) return { score, alert: null };
  return { score, alert: alertOf(score, now) };
}
