#!/usr/bin/env node
// node-smpp (npm "smpp") as the SMSC of benchmarks/session.py.
//
//   node node_session_server.js [--host 127.0.0.1] [--port 0]
//
// Accepts every bind, answers every submit_sm at once with a decimal message_id (what
// smppcore's default SmscHandler does), answers enquire_link and unbind. Line protocol:
//   stdout: "PORT <n>" once listening
//   stdin:  "start" / "stop" -> stdout "CPU <user> <system>" (microseconds of CPU so far)
//           "quit" or end of input -> exit
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
const noDelay = arg('--nodelay', '1') !== '0';
let nextId = 0;


const server = smpp.createServer(function (session) {
  if (noDelay) session.socket.setNoDelay(true);
  session.on('error', function () { session.destroy(); });
  const bind = function (pdu) { session.send(pdu.response({ system_id: 'node-smpp' })); };
  session.on('bind_transceiver', bind);
  session.on('bind_transmitter', bind);
  session.on('bind_receiver', bind);
  session.on('submit_sm', function (pdu) {
    nextId += 1;
    session.send(pdu.response({ message_id: String(nextId) }));
  });
  session.on('enquire_link', function (pdu) { session.send(pdu.response()); });
  session.on('unbind', function (pdu) {
    session.send(pdu.response());
    session.close();
  });
});

server.listen(port, host, function () {
  process.stdout.write('PORT ' + server.address().port + '\n');
});

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', function (line) {
  const cmd = line.trim();
  if (cmd === 'start' || cmd === 'stop') {
    const u = process.cpuUsage();
    process.stdout.write('CPU ' + u.user + ' ' + u.system + '\n');
  } else if (cmd === 'quit') {
    process.exit(0);
  }
});
rl.on('close', function () { process.exit(0); });
