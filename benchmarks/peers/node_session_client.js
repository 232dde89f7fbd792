#!/usr/bin/env node
// node-smpp (npm "smpp") as the ESME of benchmarks/session.py.
//
//   node node_session_client.js --port P [--host 127.0.0.1] --count N --window W [--warmup K]
//
// Binds as a transceiver, submits K warm-up messages, prints "READY", waits for "go" on
// stdin, then submits N messages keeping W submit_sm in flight (a new one is sent from
// the response callback of each one answered) and prints
//   RESULT {"n", "errors", "elapsed_ns", "cpu_us", "cpu_sys_us", "p50_ns", "p99_ns", "max_ns"}
// where elapsed_ns runs from just before the first send to the last response, latency is
// per message from its send to its response (process.hrtime.bigint), percentiles are
// nearest-rank over the sorted list of all N, and cpu_us is process.cpuUsage() (user +
// system) over the same phase. On "quit" (or end of input) it unbinds and exits.
//
// node-smpp is found by require('smpp') (set NODE_PATH to tests/interop/node/node_modules)
// or, failing that, in ../../tests/interop/node/node_modules relative to this file.
'use strict';

const path = require('path');
const readline = require('readline');

function load() {
  try {
    return require('smpp');
  } catch (e) {
    return require(path.join(__dirname, '..', '..', 'tests', 'interop', 'node', 'node_modules', 'smpp'));
  }
}

const smpp = load();

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const host = arg('--host', '127.0.0.1');
const port = parseInt(arg('--port', '0'), 10);
const count = parseInt(arg('--count', '100000'), 10);
const windowSize = Math.max(1, parseInt(arg('--window', '1'), 10));
const warmup = parseInt(arg('--warmup', '0'), 10);
const noDelay = arg('--nodelay', '1') !== '0';

// The workload of benchmarks/session.py (and codec.py): one typical submit_sm.
const TEXT = Buffer.from('Your verification code is 482913. Thanks', 'latin1');
function submitFields() {
  return {
    source_addr_ton: 1, source_addr_npi: 1, source_addr: '447700900001',
    dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '447700900123',
    registered_delivery: 1,
    short_message: TEXT,
  };
}

function fail(msg) {
  process.stderr.write('node_session_client: ' + msg + '\n');
  process.exit(2);
}


// Submit n messages with `windowSize` in flight; call done(starts, ends, errors).
function drive(session, n, done) {
  const starts = new Float64Array(n);
  const ends = new Float64Array(n);
  const base = process.hrtime.bigint();
  let sent = 0;
  let answered = 0;
  let errors = 0;
  if (n === 0) {
    done(base, starts, ends, 0);
    return;
  }
  function sendOne() {
    const i = sent++;
    starts[i] = Number(process.hrtime.bigint() - base);
    session.submit_sm(submitFields(), function (pdu) {
      ends[i] = Number(process.hrtime.bigint() - base);
      if (pdu.command_status !== 0) errors++;
      answered++;
      if (sent < n) sendOne();
      else if (answered === n) done(base, starts, ends, errors);
    });
  }
  const first = Math.min(windowSize, n);
  for (let k = 0; k < first; k++) sendOne();
}

function percentile(sorted, p) {
  const n = sorted.length;
  if (n === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  return sorted[Math.min(rank, n) - 1];
}

const session = smpp.connect({ host: host, port: port });
if (noDelay) session.socket.setNoDelay(true);
session.on('error', function (e) { fail('session error: ' + e.message); });
session.on('close', function () {
  if (!finished) fail('connection closed early');
});
// Answer what an SMSC may send us, so the session never stalls.
session.on('enquire_link', function (pdu) { session.send(pdu.response()); });
session.on('deliver_sm', function (pdu) { session.send(pdu.response()); });

let finished = false;
let goResolve = null;
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', function (line) {
  const cmd = line.trim();
  if (cmd === 'go' && goResolve) {
    const f = goResolve;
    goResolve = null;
    f();
  } else if (cmd === 'quit') {
    leave();
  }
});
rl.on('close', leave);

// After the result (or when told to quit): unbind politely, exit in any case.
function leave() {
  if (!finished) process.exit(0);
  setTimeout(function () { process.exit(0); }, 2000).unref();
  session.unbind(function () {
    session.close();
    process.exit(0);
  });
}

session.on('connect', function () {
  session.bind_transceiver({ system_id: 'bench', password: 'bench' }, function (pdu) {
    if (pdu.command_status !== 0) fail('bind refused: ' + pdu.command_status);
    drive(session, warmup, function () {
      goResolve = measured;
      process.stdout.write('READY\n');
    });
  });
});

function measured() {
  const cpu0 = process.cpuUsage();
  drive(session, count, function (base, starts, ends, errors) {
    const cpu1 = process.cpuUsage(cpu0);  // the difference
    let last = 0;
    const lat = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      lat[i] = ends[i] - starts[i];
      if (ends[i] > last) last = ends[i];
    }
    lat.sort();
    const result = {
      impl: 'node',
      n: count,
      errors: errors,
      elapsed_ns: last,  // from `base`, taken just before the first send
      cpu_us: cpu1.user + cpu1.system,
      cpu_sys_us: cpu1.system,
      p50_ns: percentile(lat, 50),
      p99_ns: percentile(lat, 99),
      max_ns: count ? lat[count - 1] : 0,
    };
    process.stdout.write('RESULT ' + JSON.stringify(result) + '\n');
    finished = true;  // the orchestrator reads the server's CPU, then says "quit"
  });
}
