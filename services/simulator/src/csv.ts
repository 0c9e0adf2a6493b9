/**
 * The reference demo's CSV format, one reading per row:
 *   time,car,coolant_temp,...,control_unit_firmware   (the 18 sensors in SENSOR_NAMES order)
 * `time` is epoch SECONDS, possibly fractional; `car` is the vehicle id. Columns are matched by
 * header name, so their order may differ; every column must be present and no other. Blank lines
 * are skipped; CRLF line ends and double quotes around a whole field are accepted.
 */
import { InvalidInputError, SENSOR_NAMES } from '@pitwall/common';
import type { Reading } from './fleet.js';

export const CSV_COLUMNS: readonly string[] = Object.freeze(['time', 'car', ...SENSOR_NAMES]);

/** A malformed CSV; `line` is 1-based, as an editor shows it. */
export class CsvError extends InvalidInputError {
  readonly line: number;
  constructor(line: number, message: string) {
    super('csv.invalid', `line ${line}: ${message}`, { line });
    this.line = line;
  }
}

const unquote = (field: string): string => {
  const f = field.trim();
  return f.length >= 2 && f.startsWith('"') && f.endsWith('"') ? f.slice(1, -1) : f;
};

export function parseCsv(text: string): Reading[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const headerIndex = lines.findIndex((l) => l.trim() !== '');
  if (headerIndex < 0) throw new CsvError(1, 'empty file, expected a header');
  const header = lines[headerIndex]!.split(',').map(unquote);
  const headerLine = headerIndex + 1;
  const column = new Map<string, number>();
  header.forEach((name, i) => {
    if (!CSV_COLUMNS.includes(name)) throw new CsvError(headerLine, `unknown column "${name}"`);
    if (column.has(name)) throw new CsvError(headerLine, `column "${name}" given twice`);
    column.set(name, i);
  });
  const missing = CSV_COLUMNS.filter((c) => !column.has(c));
  if (missing.length > 0) throw new CsvError(headerLine, `missing column(s) ${missing.join(', ')}`);

  const readings: Reading[] = [];
  for (let i = headerIndex + 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const lineNo = i + 1;
    const fields = line.split(',').map(unquote);
    if (fields.length !== header.length) throw new CsvError(lineNo, `expected ${header.length} fields, got ${fields.length}`);
    const field = (name: string): string => fields[column.get(name)!]!;
    const number = (name: string): number => {
      const raw = field(name);
      const n = raw === '' ? Number.NaN : Number(raw);
      if (!Number.isFinite(n)) throw new CsvError(lineNo, `${name}: expected a number, got "${raw}"`);
      return n;
    };
    const vehicleId = field('car');
    if (vehicleId === '') throw new CsvError(lineNo, 'car: empty vehicle id');
    const ts = Math.round(number('time') * 1000);
    const values: Record<string, number> = {};
    for (const name of SENSOR_NAMES) values[name] = number(name);
    readings.push({ vehicleId, ts, values });
  }
  return readings;
}

/** Inverse of parseCsv for readings with millisecond timestamps; numbers keep full precision. */
export function formatCsv(readings: readonly Reading[]): string {
  const rows = [CSV_COLUMNS.join(',')];
  for (const r of readings) {
    if (/[,"\r\n]/.test(r.vehicleId)) throw new RangeError(`vehicle id "${r.vehicleId}" cannot be written to CSV`);
    const values = SENSOR_NAMES.map((n) => {
      const v = r.values[n];
      if (v === undefined || !Number.isFinite(v)) throw new RangeError(`reading of ${r.vehicleId} at ${r.ts}: ${n} is not a finite number`);
      return String(v);
    });
    rows.push([String(r.ts / 1000), r.vehicleId, ...values].join(','));
  }
  return rows.join('\n') + '\n';
}
