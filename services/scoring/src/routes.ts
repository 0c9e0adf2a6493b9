/**
 * Which served model scores a window. The rule: a window is scored by the served model whose
 * metadata declares a window of the same size (metadata.window.sizeMs); the window's size is the
 * definition its record names (features v2 window_size_ms), else window_end - window_start. A
 * window no served model declares is not scored: it is counted per size
 * (pitwall_scoring_windows_unrouted_total{window_ms}) and logged. Scoring serves one model per name
 * in MODEL_NAME; two of them declaring the same size is refused at start, and a version declaring
 * another size than the one it would replace is refused (model-holder.ts), so the table only
 * changes with the names configured. Pure.
 */
import type { ModelMetadata } from '@pitwall/model';

export { windowSizeOf } from '@pitwall/common';

/** Window size -> index of the served model declaring it (the first one, should two declare it). */
export function routeTable(served: readonly Pick<ModelMetadata, 'window'>[]): Map<number, number> {
  const table = new Map<number, number>();
  served.forEach((m, i) => {
    if (!table.has(m.window.sizeMs)) table.set(m.window.sizeMs, i);
  });
  return table;
}

/** Served models declaring a size another one declares already: `name (size)` lines, empty when none. */
export function clashingWindows(served: readonly Pick<ModelMetadata, 'name' | 'version' | 'window'>[]): string[] {
  const first = new Map<number, string>();
  const clashes: string[] = [];
  for (const m of served) {
    const label = `${m.name}@${m.version}`;
    const other = first.get(m.window.sizeMs);
    if (other === undefined) first.set(m.window.sizeMs, label);
    else clashes.push(`${label} and ${other} both declare ${m.window.sizeMs} ms windows`);
  }
  return clashes;
}
