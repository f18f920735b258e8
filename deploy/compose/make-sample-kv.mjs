#!/usr/bin/env node
// Derives deploy/compose/sample.kv from tests/data/replay/sample.jsonl (the
// recorded conversation, `kcat -C -J` lines) for the compose `sender`
// service, which feeds it to kafka-console-producer.sh with
// parse.key=true and key.separator=<TAB>: one "key<TAB>payload" line per
// record, in recording order, payload bytes unchanged (each recorded payload
// is already one line; the broken record stays broken on purpose).
//
//   node deploy/compose/make-sample-kv.mjs            rewrites sample.kv
//   node deploy/compose/make-sample-kv.mjs --check    exit 1 if it drifted
//
// The console producer cannot express a null key (a line without the
// separator is an error, an empty key is the empty string, not null), so
// records with a null key or a null payload (tombstone) are skipped and
// named on stderr; sample.jsonl has none. A key with a tab or a newline, or
// a payload with a newline, cannot be written in this format and is an error.
// tests/deploy/validate.mjs imports derive() to check sample.kv is current.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const SOURCE = join(here, '..', '..', 'tests', 'data', 'replay', 'sample.jsonl');
export const TARGET = join(here, 'sample.kv');

export function derive(jsonlText) {
  const out = [];
  const skipped = [];
  jsonlText.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `sample.jsonl:${i + 1}`;
    let rec;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      throw new Error(`${where}: not JSON: ${e.message}`);
    }
    const at = `${where} (partition ${rec.partition}, offset ${rec.offset})`;
    if (rec.key === null || rec.key === undefined) { skipped.push(`${at}: null key`); return; }
    if (rec.payload === null || rec.payload === undefined) { skipped.push(`${at}: null payload`); return; }
    if (typeof rec.key !== 'string' || typeof rec.payload !== 'string') {
      throw new Error(`${at}: key and payload must be strings`);
    }
    if (/[\t\r\n]/.test(rec.key)) throw new Error(`${at}: key contains a tab or newline`);
    if (/[\r\n]/.test(rec.payload)) throw new Error(`${at}: payload spans several lines`);
    out.push(`${rec.key}\t${rec.payload}\n`);
  });
  return { text: out.join(''), records: out.length, skipped };
}

function main() {
  const { text, records, skipped } = derive(readFileSync(SOURCE, 'utf8'));
  for (const s of skipped) process.stderr.write(`make-sample-kv: skipped ${s}\n`);
  if (process.argv.includes('--check')) {
    let current = null;
    try { current = readFileSync(TARGET, 'utf8'); } catch { /* missing */ }
    if (current !== text) {
      process.stderr.write('make-sample-kv: deploy/compose/sample.kv is stale; run node deploy/compose/make-sample-kv.mjs\n');
      process.exit(1);
    }
    process.stdout.write(`make-sample-kv: sample.kv current (${records} records)\n`);
    return;
  }
  writeFileSync(TARGET, text);
  process.stdout.write(`make-sample-kv: wrote ${TARGET} (${records} records, ${skipped.length} skipped)\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
