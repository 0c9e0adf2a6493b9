import type { DriftSummary } from '@pitwall/common';

/**
 * Agreement between the active model and a shadow model on the same windows, pure. A window
 * "alerts" for a model when its score is above that model's own threshold.
 */

export interface AgreementCounts {
  both: number;
  active_only: number;
  shadow_only: number;
  neither: number;
}

export const ZERO_AGREEMENT: Readonly<AgreementCounts> = Object.freeze({ both: 0, active_only: 0, shadow_only: 0, neither: 0 });

/** Counts per outcome for paired decisions (index i of both arrays is the same window). */
export function tallyAgreement(active: readonly boolean[], shadow: readonly boolean[]): AgreementCounts {
  if (active.length !== shadow.length) throw new RangeError(`${active.length} active decisions but ${shadow.length} shadow decisions`);
  const c = { ...ZERO_AGREEMENT };
  active.forEach((a, i) => {
    const s = shadow[i]!;
    if (a && s) c.both++;
    else if (a) c.active_only++;
    else if (s) c.shadow_only++;
    else c.neither++;
  });
  return c;
}

export function addAgreement(a: AgreementCounts, b: AgreementCounts): AgreementCounts {
  return { both: a.both + b.both, active_only: a.active_only + b.active_only, shadow_only: a.shadow_only + b.shadow_only, neither: a.neither + b.neither };
}

export const totalOf = (c: AgreementCounts): number => c.both + c.active_only + c.shadow_only + c.neither;

/** Share of windows both models decided alike; null before any window. */
export function agreementRatio(c: AgreementCounts): number | null {
  const total = totalOf(c);
  return total === 0 ? null : (c.both + c.neither) / total;
}

/** One (active version, shadow version) pair's counts over a period. */
export interface PairTally {
  active: string;
  shadow: string;
  counts: AgreementCounts;
}

/**
 * Accumulates tallies per version pair (a swap of either model mid-period starts a new pair, so a
 * report never mixes versions); take() hands them over and starts a new period.
 */
export interface AgreementBook {
  add(activeVersion: string, shadowVersion: string, counts: AgreementCounts): void;
  take(): PairTally[];
}

export function createAgreementBook(): AgreementBook {
  let pairs = new Map<string, PairTally>();
  return {
    add(active, shadow, counts) {
      const key = `${active}\u0000${shadow}`;
      const prev = pairs.get(key);
      pairs.set(key, { active, shadow, counts: prev ? addAgreement(prev.counts, counts) : { ...counts } });
    },
    take() {
      const out = [...pairs.values()];
      pairs = new Map();
      return out;
    },
  };
}

/**
 * `model.shadow` (TOPIC_SHADOW_REPORTS) value, JSON, key = model name. Each scoring replica
 * publishes its own every SCORING_SHADOW_REPORT_MS and on close, one per version pair seen in the
 * period [from, to); sum the replicas' reports for the fleet-wide picture.
 */
export interface ShadowReport {
  schema: 'pitwall.shadow-report.v1';
  model: string;
  /** The replica that scored these windows. */
  instance: string;
  active: { version: string; windows: number; alerts: number; alert_rate: number | null };
  shadow: { version: string; windows: number; alerts: number; alert_rate: number | null };
  agreement: AgreementCounts & { ratio: number | null };
  from: number;
  to: number;
  /**
   * Drift of the live windows over the last period_ms against each model's training data: does
   * the candidate fit the fleet better? null for a model without a drift reference. Absent from
   * replicas that do not track drift.
   */
  drift?: ShadowReportDrift;
}

export interface ShadowReportDrift {
  period_ms: number;
  active: (DriftSummary & { version: string }) | null;
  shadow: (DriftSummary & { version: string }) | null;
}

export function buildShadowReport(tally: PairTally, ctx: { model: string; instance: string; from: number; to: number; drift?: ShadowReportDrift | undefined }): ShadowReport {
  const c = tally.counts;
  const windows = totalOf(c);
  const activeAlerts = c.both + c.active_only;
  const shadowAlerts = c.both + c.shadow_only;
  const rate = (alerts: number): number | null => (windows === 0 ? null : alerts / windows);
  return {
    schema: 'pitwall.shadow-report.v1',
    model: ctx.model,
    instance: ctx.instance,
    active: { version: tally.active, windows, alerts: activeAlerts, alert_rate: rate(activeAlerts) },
    shadow: { version: tally.shadow, windows, alerts: shadowAlerts, alert_rate: rate(shadowAlerts) },
    agreement: { ...c, ratio: agreementRatio(c) },
    from: ctx.from,
    to: ctx.to,
    ...(ctx.drift ? { drift: ctx.drift } : {}),
  };
}
