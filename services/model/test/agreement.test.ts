import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addAgreement, agreementRatio, buildShadowReport, createAgreementBook, tallyAgreement, type AgreementCounts } from '../src/agreement.js';

const T = true;
const F = false;

describe('tallyAgreement', () => {
  const cases: [string, boolean[], boolean[], AgreementCounts, number | null][] = [
    ['no windows', [], [], { both: 0, active_only: 0, shadow_only: 0, neither: 0 }, null],
    ['all agree, none alert', [F, F, F], [F, F, F], { both: 0, active_only: 0, shadow_only: 0, neither: 3 }, 1],
    ['all agree, all alert', [T, T], [T, T], { both: 2, active_only: 0, shadow_only: 0, neither: 0 }, 1],
    ['one of each', [T, T, F, F], [T, F, T, F], { both: 1, active_only: 1, shadow_only: 1, neither: 1 }, 0.5],
    ['shadow stricter', [T, T, T, F], [T, F, F, F], { both: 1, active_only: 2, shadow_only: 0, neither: 1 }, 0.5],
    ['shadow looser', [F, F, F, F, T], [T, F, F, F, T], { both: 1, active_only: 0, shadow_only: 1, neither: 3 }, 0.8],
  ];
  for (const [name, active, shadow, counts, ratio] of cases) {
    it(name, () => {
      const c = tallyAgreement(active, shadow);
      assert.deepEqual(c, counts);
      assert.equal(agreementRatio(c), ratio);
    });
  }
  it('refuses decisions of different lengths', () => {
    assert.throws(() => tallyAgreement([T], []), RangeError);
  });
  it('adds counts', () => {
    assert.deepEqual(addAgreement({ both: 1, active_only: 2, shadow_only: 3, neither: 4 }, { both: 10, active_only: 20, shadow_only: 30, neither: 40 }), {
      both: 11,
      active_only: 22,
      shadow_only: 33,
      neither: 44,
    });
  });
});

describe('agreement book and reports', () => {
  it('accumulates per version pair and starts a new period on take()', () => {
    const book = createAgreementBook();
    book.add('1', '2', tallyAgreement([T, F], [T, T]));
    book.add('1', '2', tallyAgreement([F], [F]));
    book.add('3', '2', tallyAgreement([T], [F]));
    assert.deepEqual(book.take(), [
      { active: '1', shadow: '2', counts: { both: 1, active_only: 0, shadow_only: 1, neither: 1 } },
      { active: '3', shadow: '2', counts: { both: 0, active_only: 1, shadow_only: 0, neither: 0 } },
    ]);
    assert.deepEqual(book.take(), []);
  });

  it('a report derives windows, alerts and rates from the counts', () => {
    const r = buildShadowReport({ active: '1', shadow: '2', counts: { both: 2, active_only: 1, shadow_only: 3, neither: 4 } }, { model: 'm', instance: 'i', from: 100, to: 200 });
    assert.deepEqual(r, {
      schema: 'pitwall.shadow-report.v1',
      model: 'm',
      instance: 'i',
      active: { version: '1', windows: 10, alerts: 3, alert_rate: 0.3 },
      shadow: { version: '2', windows: 10, alerts: 5, alert_rate: 0.5 },
      agreement: { both: 2, active_only: 1, shadow_only: 3, neither: 4, ratio: 0.6 },
      from: 100,
      to: 200,
    });
    const empty = buildShadowReport({ active: '1', shadow: '2', counts: { both: 0, active_only: 0, shadow_only: 0, neither: 0 } }, { model: 'm', instance: 'i', from: 0, to: 1 });
    assert.equal(empty.active.alert_rate, null);
    assert.equal(empty.agreement.ratio, null);
  });

  it('a report carries the drift of both models when given, and none otherwise', () => {
    const counts = { both: 0, active_only: 0, shadow_only: 0, neither: 1 };
    const top = [{ feature: 'coolant_temp_mean', psi: 0.4, reading: 'significant' as const }];
    const drift = { period_ms: 900_000, active: { version: '1', windows: 1, max_psi: 0.4, reading: 'significant' as const, significant: 1, top }, shadow: null };
    assert.deepEqual(buildShadowReport({ active: '1', shadow: '2', counts }, { model: 'm', instance: 'i', from: 0, to: 1, drift }).drift, drift);
    assert.equal('drift' in buildShadowReport({ active: '1', shadow: '2', counts }, { model: 'm', instance: 'i', from: 0, to: 1 }), false);
  });
});
