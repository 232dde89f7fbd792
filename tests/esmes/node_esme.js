#!/usr/bin/env node
// node-smpp (npm "smpp", installed in tests/interop/node by tests/run.sh) as an ESME,
// for tests/test_check_esme.py.
//
//   node tests/esmes/node_esme.js PORT [WINDOW] [RATE]
//
// node-smpp answers nothing by itself: this script answers enquire_link, unbind,
// deliver_sm and an unknown PDU (pdu.response() makes generic_nack ESME_RINVCMDID for
// those) as a careful user would, and adds what the library leaves out: a window of
// submits in flight, a retry 0.3 s after ESME_RTHROTTLED, and a reconnect 0.2 s after
// the connection closes. Prints "bound" per bind; exits 0 after the SMSC unbinds it.
'use strict';

const path = require('path');
const smpp = require(path.join(__dirname, '..', 'interop', 'node', 'node_modules', 'smpp'));

const port = Number(process.argv[2]);
const windowSize = Number(process.argv[3] || 10);
const rate = Number(process.argv[4] || 100);
const retryAfterMs = 300;
const say = (s) => process.stdout.write(s + '\n');

let next = 1;
const retries = [];
let unbound = false;

function start() {
  const session = smpp.connect({ host: '127.0.0.1', port: port });
  let inFlight = 0;
  let timer = null;
  let bound = false;

  session.on('error', () => {});  // 'close' follows: reconnect there
  session.on('close', () => {
    if (timer) clearInterval(timer);
    if (unbound) process.exit(0);
    setTimeout(start, 200);
  });
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('deliver_sm', (pdu) => session.send(pdu.response()));
  session.on('unknown', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    unbound = true;
    session.send(pdu.response(), () => session.close());
  });

  function submit() {
    if (!bound || inFlight >= windowSize) return;
    const number = retries.length ? retries.shift() : next++;
    inFlight++;
    const sent = session.submit_sm({
      source_addr: 'NodeSmpp',
      destination_addr: '4477006' + String(number).padStart(5, '0'),
      short_message: 'node-smpp test message ' + number,
      registered_delivery: 1,
    }, (resp) => {
      inFlight--;
      if (resp.command_status === smpp.ESME_RTHROTTLED) {
        setTimeout(() => retries.push(number), retryAfterMs);
      }
    });
    if (!sent) { inFlight--; retries.unshift(number); }
  }

  session.bind_transceiver({ system_id: 'nodesmpp', password: 'secret' }, (pdu) => {
    if (pdu.command_status !== 0) { session.close(); return; }
    bound = true;
    say('bound');
    timer = setInterval(submit, 1000 / rate);
  });
}

start();
