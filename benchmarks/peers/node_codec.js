#!/usr/bin/env node
// node-smpp (npm "smpp") codec timings, for benchmarks/codec.py.
//
//   node node_codec.js [--seconds S] [--repeat N]   one run of every operation, JSON on stdout
//   node node_codec.js --serve                       line protocol, used by codec.py so that
//                                                    node and Python run interleaved:
//       stdin:  {"op": "submit_sm.encode", "seconds": 0.5}     (or "n": iterations)
//       stdout: {"op": ..., "n": ..., "elapsed": seconds, "ops": PDUs per iteration}
//   node node_codec.js --hex                         the PDUs node-smpp encodes, as hex (checks)
//
// Operations mirror codec.py's: <pdu>.encode builds `new PDU(command, {...})` and calls
// `.toBuffer()`; <pdu>.decode is `new PDU(buffer)` with node-smpp's presentation filters
// switched off (short_message stays a Buffer, times stay strings: the same raw wire view
// smppcore's decode gives); <pdu>.decode_filtered keeps them on, as node-smpp does by
// default; <pdu>.pair decodes (raw) what it just encoded, <pdu>.pair_filtered with the
// filters on. framer cuts one buffer of 10,000 back-to-back submit_sm by command_length
// and decodes each (node-smpp has no buffer framer of its own: its session reads a
// stream with PDU.commandLength/fromStream). short_message is passed as a Buffer, so
// node-smpp does no text coding on encode, like smppcore.
//
// node-smpp is found by require('smpp') (set NODE_PATH to tests/interop/node/node_modules)
// or, failing that, in ../../tests/interop/node/node_modules relative to this file.
'use strict';

const path = require('path');

function load() {
  try {
    return require('smpp');
  } catch (e) {
    return require(path.join(__dirname, '..', '..', 'tests', 'interop', 'node', 'node_modules', 'smpp'));
  }
}

const smpp = load();
const PDU = smpp.PDU;

const TEXT = Buffer.from('Your verification code is 482913. Thanks', 'latin1');
const MESSAGE_ID = 'a1b2c3d4e5f60718';
const RECEIPT = Buffer.from(
  'id:a1b2c3d4e5f60718 sub:001 dlvrd:001 submit date:2401151230 done date:2401151231 ' +
  'stat:DELIVRD err:000 text:Your verification co', 'latin1');
const FRAMER_COUNT = 10000;

function buildSubmitSm() {
  return new PDU('submit_sm', {
    sequence_number: 7,
    source_addr_ton: 1, source_addr_npi: 1, source_addr: '447700900001',
    dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '447700900123',
    registered_delivery: 1,
    short_message: TEXT,
  });
}

function buildSubmitSmResp() {
  return new PDU('submit_sm_resp', { sequence_number: 7, message_id: MESSAGE_ID });
}

function buildDeliverSm() {
  return new PDU('deliver_sm', {
    sequence_number: 7,
    source_addr_ton: 1, source_addr_npi: 1, source_addr: '447700900123',
    dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '447700900001',
    esm_class: 4,
    short_message: RECEIPT,
    receipted_message_id: MESSAGE_ID,
    message_state: 2,
  });
}

const BUILDERS = { submit_sm: buildSubmitSm, submit_sm_resp: buildSubmitSmResp, deliver_sm: buildDeliverSm };
const WIRE = {};
for (const k of Object.keys(BUILDERS)) WIRE[k] = BUILDERS[k]().toBuffer();
const STREAM = Buffer.concat(Array.from({ length: FRAMER_COUNT }, () => WIRE.submit_sm));

const realFilter = PDU.prototype._filter;
function noFilter() {}

let sink = 0; // keeps results alive so V8 cannot drop the work

function decodeRaw(buf) {
  PDU.prototype._filter = noFilter;
  try {
    return new PDU(buf);
  } finally {
    PDU.prototype._filter = realFilter;
  }
}

function splitDecode(buf) {
  PDU.prototype._filter = noFilter;
  try {
    const out = [];
    let p = 0;
    const n = buf.length;
    while (n - p >= 16) {
      const len = buf.readUInt32BE(p);
      if (p + len > n) break;
      out.push(new PDU(buf.slice(p, p + len)));
      p += len;
    }
    return out;
  } finally {
    PDU.prototype._filter = realFilter;
  }
}

// Each loop is written out (not a callback per iteration) so the timing is of
// node-smpp's code, not of an extra closure call.
const LOOPS = {};
for (const name of Object.keys(BUILDERS)) {
  const build = BUILDERS[name];
  const wire = WIRE[name];
  LOOPS[name + '.encode'] = [1, (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += build().toBuffer().length;
    sink += s;
  }];
  LOOPS[name + '.decode'] = [1, (n) => {
    let s = 0;
    PDU.prototype._filter = noFilter;
    try {
      for (let i = 0; i < n; i++) s += new PDU(wire).sequence_number;
    } finally {
      PDU.prototype._filter = realFilter;
    }
    sink += s;
  }];
  LOOPS[name + '.decode_filtered'] = [1, (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += new PDU(wire).sequence_number;
    sink += s;
  }];
  LOOPS[name + '.pair'] = [1, (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += decodeRaw(build().toBuffer()).sequence_number;
    sink += s;
  }];
  LOOPS[name + '.pair_filtered'] = [1, (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += new PDU(build().toBuffer()).sequence_number;
    sink += s;
  }];
}
LOOPS['framer'] = [FRAMER_COUNT, (n) => {
  let s = 0;
  for (let i = 0; i < n; i++) s += splitDecode(STREAM).length;
  sink += s;
}];

function timeLoop(fn, n) {
  const t0 = process.hrtime.bigint();
  fn(n);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const calibrated = {};

// Iterations for about `seconds` of work; the growing runs also warm up V8's JIT.
function calibrate(op, seconds) {
  const key = op + '@' + seconds;
  if (calibrated[key]) return calibrated[key];
  const fn = LOOPS[op][1];
  const floor = Math.min(0.05, seconds / 5);
  let n = 1;
  let t = timeLoop(fn, n);
  while (t < floor) {
    n *= t > 0 ? Math.min(10, Math.max(2, Math.ceil(floor / t))) : 10;
    t = timeLoop(fn, n);
  }
  calibrated[key] = Math.max(1, Math.round(n * seconds / t));
  return calibrated[key];
}

function measure(req) {
  const entry = LOOPS[req.op];
  if (!entry) return { op: req.op, error: 'unknown op' };
  const n = req.n || calibrate(req.op, req.seconds || 0.5);
  const elapsed = timeLoop(entry[1], n);
  return { op: req.op, n: n, elapsed: elapsed, ops: entry[0] };
}

function versionOf() {
  try {
    return require(path.join(path.dirname(require.resolve('smpp')), 'package.json')).version;
  } catch (e) {
    try {
      return require(path.join(__dirname, '..', '..', 'tests', 'interop', 'node', 'node_modules', 'smpp', 'package.json')).version;
    } catch (e2) {
      return null;
    }
  }
}

function serve() {
  const readline = require('readline');
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  const wire = {};
  for (const k of Object.keys(WIRE)) wire[k] = WIRE[k].toString('hex');
  process.stdout.write(JSON.stringify({
    ready: true, node: process.version, smpp: versionOf(), ops: Object.keys(LOOPS), wire: wire,
  }) + '\n');
  rl.on('line', (line) => {
    line = line.trim();
    if (!line) return;
    let out;
    try {
      out = measure(JSON.parse(line));
    } catch (e) {
      out = { error: String(e && e.stack || e) };
    }
    process.stdout.write(JSON.stringify(out) + '\n');
  });
}

function once(seconds, repeat) {
  const results = {};
  for (const op of Object.keys(LOOPS)) {
    const rates = [];
    for (let r = 0; r < repeat; r++) {
      const m = measure({ op: op, seconds: seconds });
      rates.push(m.n * m.ops / m.elapsed);
    }
    rates.sort((a, b) => a - b);
    results[op] = rates[Math.floor(rates.length / 2)];
  }
  process.stdout.write(JSON.stringify({ node: process.version, smpp: versionOf(), ops_per_s: results, sink: sink }) + '\n');
}

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? Number(process.argv[i + 1]) : dflt;
}

if (process.argv.includes('--serve')) {
  serve();
} else if (process.argv.includes('--hex')) {
  const out = {};
  for (const k of Object.keys(WIRE)) out[k] = WIRE[k].toString('hex');
  process.stdout.write(JSON.stringify(out) + '\n');
} else {
  once(arg('--seconds', 0.5), arg('--repeat', 5));
}
