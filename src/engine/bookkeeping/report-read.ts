// Reading a report back (s3-encrypt --retry-failed): the rows ReportWriter
// wrote, CSV or JSON lines, told apart by their first character rather than the
// file's name. A key's last row is its outcome (a resumed run may report a key
// again). Anything that is not such a report is refused, never half-read.
import { REPORT_COLUMNS } from './report.js';

export interface ReportRow {
  key: string;
  outcome: string;
  /** The bucket of the key (reports written with ReportOptions.bucket). */
  bucket?: string;
  code?: string;
}

/** The text is not a report ReportWriter wrote: says where it stopped making sense. */
export class NotAReportError extends Error {}

const OUTCOMES = new Set(['encrypted', 'wouldEncrypt', 'alreadyEncrypted', 'skipped', 'failed']);

/** Decodes UTF-8 across chunk boundaries; bytes that are not UTF-8 (a gzip, an image) are not a report. */
async function* text(chunks: AsyncIterable<string | Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  try {
    for await (const chunk of chunks) yield typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    yield decoder.decode();
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_ENCODING_INVALID_ENCODED_DATA')
      throw new NotAReportError('it is not UTF-8 text');
    throw err;
  }
}

/** CSV records as ReportWriter quotes them (RFC 4180: "" inside quotes; quoted fields may hold , \n \r). */
async function* csvRecords(chunks: AsyncIterable<string>): AsyncGenerator<string[]> {
  let field = '';
  let record: string[] = [];
  let inQuotes = false;
  let quoteSeen = false; // a " inside quotes: the end of the field, or the first of ""
  for await (const chunk of chunks) {
    for (const ch of chunk) {
      if (inQuotes) {
        if (quoteSeen) {
          quoteSeen = false;
          if (ch === '"') {
            field += '"';
            continue;
          }
          inQuotes = false; // the field ended: this character is after it
        } else {
          if (ch === '"') quoteSeen = true;
          else field += ch;
          continue;
        }
      }
      if (ch === '"' && field === '') inQuotes = true;
      else if (ch === ',') {
        record.push(field);
        field = '';
      } else if (ch === '\n') {
        record.push(field);
        yield record;
        record = [];
        field = '';
      } else if (ch !== '\r') field += ch; // CRLF line ends (a file saved by a spreadsheet); a \r in a key is quoted
    }
  }
  if (inQuotes && !quoteSeen) throw new NotAReportError('a quoted field is not closed at the end of the file');
  if (field !== '' || record.length > 0) {
    record.push(field);
    yield record;
  }
}

function checkedRow(row: Partial<Record<string, unknown>>, where: string): ReportRow {
  const { key, outcome, bucket, code } = row;
  if (typeof key !== 'string' || key === '') throw new NotAReportError(`${where} has no key`);
  if (typeof outcome !== 'string' || !OUTCOMES.has(outcome)) {
    throw new NotAReportError(`${where}: outcome ${JSON.stringify(outcome)} is not one of ${[...OUTCOMES].join(', ')}`);
  }
  return {
    key,
    outcome,
    ...(typeof bucket === 'string' && bucket !== '' ? { bucket } : {}),
    ...(typeof code === 'string' && code !== '' ? { code } : {}),
  };
}

async function* csvRows(chunks: AsyncIterable<string>): AsyncGenerator<ReportRow> {
  let header: string[] | undefined;
  let line = 0;
  for await (const record of csvRecords(chunks)) {
    line++;
    if (!header) {
      header = record;
      if (
        !header.includes('key') ||
        !header.includes('outcome') ||
        !header.every((c) => REPORT_COLUMNS.includes(c as never))
      )
        throw new NotAReportError(`its first line is not a report's header (${REPORT_COLUMNS.join(',')})`);
      continue;
    }
    if (record.length === 1 && record[0] === '') continue; // an empty line
    const row = Object.fromEntries(header.map((c, i) => [c, record[i]]));
    yield checkedRow(row, `row ${line}`);
  }
}

async function* jsonRows(chunks: AsyncIterable<string>): AsyncGenerator<ReportRow> {
  let rest = '';
  let line = 0;
  const parse = (l: string): ReportRow | undefined => {
    line++;
    if (l.trim() === '') return undefined;
    let row: unknown;
    try {
      row = JSON.parse(l);
    } catch {
      throw new NotAReportError(`line ${line} is not JSON`);
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row))
      throw new NotAReportError(`line ${line} is not a JSON object`);
    return checkedRow(row, `line ${line}`);
  };
  for await (const chunk of chunks) {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) {
      const row = parse(l);
      if (row) yield row;
    }
  }
  const last = parse(rest);
  if (last) yield last;
}

/** The rows of a report (CSV or JSON lines). Throws NotAReportError for anything else. */
export async function* reportRows(chunks: AsyncIterable<string | Uint8Array>): AsyncGenerator<ReportRow> {
  const it = text(chunks)[Symbol.asyncIterator]();
  // The format from the first character that is not white space.
  let head = '';
  let done = false;
  while (!done && head.trim() === '') {
    const next = await it.next();
    if (next.done) done = true;
    else head += next.value;
  }
  head = head.replace(/^\uFEFF/, '');
  if (head.trim() === '') return; // an empty report: a run without failures writes nothing in JSON lines
  async function* all(): AsyncGenerator<string> {
    yield head;
    for (let next = await it.next(); !next.done; next = await it.next()) yield next.value;
  }
  yield* head.trimStart().startsWith('{') ? jsonRows(all()) : csvRows(all());
}

export interface ReportFailures {
  /** Keys whose last row says failed, in the order of those rows. */
  keys: string[];
  /** Rows read. */
  rows: number;
  /** The buckets the rows name (none for reports without a bucket column). */
  buckets: string[];
}

/** The keys a report says failed, each once; a later row of the same key (a success after a resume) wins. */
export async function reportFailures(rows: AsyncIterable<ReportRow>): Promise<ReportFailures> {
  const failed = new Set<string>();
  const buckets = new Set<string>();
  let n = 0;
  for await (const row of rows) {
    n++;
    if (row.bucket !== undefined) buckets.add(row.bucket);
    // Only failed keys are kept (not every key of an --report-all report): memory follows the failures.
    if (row.outcome === 'failed') {
      failed.delete(row.key);
      failed.add(row.key);
    } else failed.delete(row.key);
  }
  return { keys: [...failed], rows: n, buckets: [...buckets] };
}
