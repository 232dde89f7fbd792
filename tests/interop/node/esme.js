#!/usr/bin/env node
// node-smpp (npm "smpp") as an ESME, for tests/test_interop_session.py.
//
//   node esme.js PORT '{"system_id": "...", "password": "...", "submit": {...}}'
//
// Binds as a transceiver to 127.0.0.1:PORT, sends one submit_sm (the "submit"
// object: node-smpp field names; "short_message" may be a string, which node-smpp
// encodes and picks a data_coding for, or {"$hex": "..."} for raw octets), then
// waits for both its submit_sm_resp and a deliver_sm (answered with
// deliver_sm_resp) -- and, with "expect_enquire_link": true, an enquire_link from
// the SMSC (answered) -- then sends enquire_link, then unbind, and exits 0 when the
// connection closes. Answers enquire_link and unbind from the SMSC too.
//
// Prints one JSON object per line: {"event": "bind_transceiver_resp", ...},
// "submit_sm_resp", "deliver_sm", "deliver_sm_resp_sent", "enquire_link_resp",
// "enquire_link" (from the SMSC), "unbind_resp", "closed", or "error".
'use strict';

const path = require('path');
const smpp = require(path.join(__dirname, 'node_modules', 'smpp'));

const port = Number(process.argv[2]);
const opts = JSON.parse(process.argv[3] || '{}');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

function fromJson(v) {
  if (v && typeof v === 'object' && typeof v.$hex === 'string') return Buffer.from(v.$hex, 'hex');
  return v;
}

function hex(v) {
  if (Buffer.isBuffer(v)) return v.toString('hex');
  return null;
}

const session = smpp.connect({ host: '127.0.0.1', port: port });
let gotResp = false;
let gotDeliver = false;
let gotPing = !opts.expect_enquire_link;
let finishing = false;

session.on('error', (e) => { out({ event: 'error', message: String(e && e.message || e) }); process.exit(1); });
session.on('close', () => { out({ event: 'closed' }); process.exit(0); });

session.on('enquire_link', (pdu) => {
  out({ event: 'enquire_link', sequence_number: pdu.sequence_number });
  session.send(pdu.response(), () => { gotPing = true; maybeFinish(); });
});

session.on('unbind', (pdu) => {
  out({ event: 'unbind', sequence_number: pdu.sequence_number });
  session.send(pdu.response());
});

session.on('deliver_sm', (pdu) => {
  // short_message has been through node-smpp's decode filter: {message, udh?}.
  const sm = pdu.short_message || {};
  out({
    event: 'deliver_sm',
    sequence_number: pdu.sequence_number,
    service_type: pdu.service_type,
    source_addr_ton: pdu.source_addr_ton,
    source_addr_npi: pdu.source_addr_npi,
    source_addr: pdu.source_addr,
    dest_addr_ton: pdu.dest_addr_ton,
    dest_addr_npi: pdu.dest_addr_npi,
    destination_addr: pdu.destination_addr,
    esm_class: pdu.esm_class,
    data_coding: pdu.data_coding,
    registered_delivery: pdu.registered_delivery,
    text: typeof sm.message === 'string' ? sm.message : null,
    receipted_message_id: pdu.receipted_message_id,
    message_state: pdu.message_state,
    network_error_code: hex(pdu.network_error_code),
  });
  session.send(pdu.response(), () => {
    out({ event: 'deliver_sm_resp_sent', sequence_number: pdu.sequence_number });
    gotDeliver = true;
    maybeFinish();
  });
});

function maybeFinish() {
  if (!gotResp || !gotDeliver || !gotPing || finishing) return;
  finishing = true;
  session.enquire_link((resp) => {
    out({ event: 'enquire_link_resp', command_status: resp.command_status, sequence_number: resp.sequence_number });
    session.unbind((resp2) => {
      out({ event: 'unbind_resp', command_status: resp2.command_status, sequence_number: resp2.sequence_number });
      session.close();
    });
  });
}

session.on('connect', () => {
  session.bind_transceiver({
    system_id: opts.system_id || 'nodeesme',
    password: opts.password || 'pw',
    system_type: opts.system_type || '',
  }, (pdu) => {
    out({ event: 'bind_transceiver_resp', command_status: pdu.command_status, system_id: pdu.system_id,
          sequence_number: pdu.sequence_number });
    if (pdu.command_status !== 0) { session.close(); return; }
    const submit = {};
    for (const k of Object.keys(opts.submit || {})) submit[k] = fromJson(opts.submit[k]);
    session.submit_sm(submit, (resp) => {
      out({ event: 'submit_sm_resp', command_status: resp.command_status, message_id: resp.message_id,
            sequence_number: resp.sequence_number });
      gotResp = true;
      maybeFinish();
    });
  });
});

setTimeout(() => { out({ event: 'timeout' }); process.exit(2); }, 30000).unref();
