#!/usr/bin/env node
// node-smpp (npm "smpp") as an SMSC, for tests/test_interop_session.py.
//
//   node smsc.js
//
// Listens on 127.0.0.1, port chosen by the OS, and prints {"event": "listening",
// "port": N} first. Accepts any bind; answers submit_sm with message_id "node-<n>";
// after each submit_sm with registered_delivery set sends a deliver_sm receipt
// (Appendix B text + receipted_message_id / message_state TLVs) and reports the
// deliver_sm_resp; answers enquire_link; answers unbind and closes.
//
// Prints one JSON object per line: "listening", "bind", "submit_sm",
// "deliver_sm_resp", "enquire_link", "unbind", "session_closed", "error".
'use strict';

const path = require('path');
const smpp = require(path.join(__dirname, 'node_modules', 'smpp'));

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let next = 1;

const server = smpp.createServer((session) => {
  session.on('error', (e) => out({ event: 'error', message: String(e && e.message || e) }));
  session.on('close', () => out({ event: 'session_closed' }));

  for (const bind of ['bind_transceiver', 'bind_transmitter', 'bind_receiver']) {
    session.on(bind, (pdu) => {
      out({ event: 'bind', command: pdu.command, system_id: pdu.system_id, password: pdu.password,
            system_type: pdu.system_type, interface_version: pdu.interface_version,
            sequence_number: pdu.sequence_number });
      session.send(pdu.response({ system_id: 'nodesmsc' }));
    });
  }

  session.on('submit_sm', (pdu) => {
    const id = 'node-' + next++;
    const sm = pdu.short_message || {};
    out({
      event: 'submit_sm',
      sequence_number: pdu.sequence_number,
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
      message_id: id,
    });
    session.send(pdu.response({ message_id: id }));
    if (pdu.registered_delivery & 0x03) {
      const text = 'id:' + id + ' sub:001 dlvrd:001 submit date:2611250000 done date:2611250001 stat:DELIVRD err:000 text:';
      session.deliver_sm({
        source_addr_ton: pdu.dest_addr_ton,
        source_addr_npi: pdu.dest_addr_npi,
        source_addr: pdu.destination_addr,
        dest_addr_ton: pdu.source_addr_ton,
        dest_addr_npi: pdu.source_addr_npi,
        destination_addr: pdu.source_addr,
        esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
        data_coding: 0,
        short_message: Buffer.from(text, 'ascii'),
        receipted_message_id: id,
        message_state: smpp.MESSAGE_STATE.DELIVERED,
      }, (resp) => {
        out({ event: 'deliver_sm_resp', command_status: resp.command_status, sequence_number: resp.sequence_number,
              message_id: id });
      });
    }
  });

  session.on('enquire_link', (pdu) => {
    out({ event: 'enquire_link', sequence_number: pdu.sequence_number });
    session.send(pdu.response());
  });

  session.on('unbind', (pdu) => {
    out({ event: 'unbind', sequence_number: pdu.sequence_number });
    session.send(pdu.response(), () => session.close());
  });
});

server.on('error', (e) => { out({ event: 'error', message: String(e && e.message || e) }); process.exit(1); });
server.listen(0, '127.0.0.1', () => out({ event: 'listening', port: server.address().port }));
setTimeout(() => process.exit(2), 60000).unref();
