// node-smpp as an ESME: bind, submit, take a receipt, enquire_link, unbind.
// Usage: node esme.js PORT ; prints one JSON object per event on stdout.
const smpp = require('smpp');
const port = Number(process.argv[2]);
const out = (o) => console.log(JSON.stringify(o));
const session = smpp.connect({ url: `smpp://127.0.0.1:${port}` });
session.on('error', (e) => { out({ event: 'error', message: String(e) }); process.exit(1); });
session.on('deliver_sm', (pdu) => {
  out({ event: 'deliver_sm', esm_class: pdu.esm_class, short_message: Buffer.from(pdu.short_message.message || pdu.short_message).toString('latin1'),
        receipted_message_id: pdu.receipted_message_id, message_state: pdu.message_state });
  session.send(pdu.response());
  session.enquire_link((resp) => {
    out({ event: 'enquire_link_resp', command_status: resp.command_status });
    session.unbind((resp2) => { out({ event: 'unbind_resp', command_status: resp2.command_status }); session.close(); });
  });
});
session.bind_transceiver({ system_id: 'nodeesme', password: 'pw' }, (pdu) => {
  out({ event: 'bind_resp', command_status: pdu.command_status, system_id: pdu.system_id });
  session.submit_sm({ source_addr: 'Node', destination_addr: '447700900123', short_message: Buffer.from('from node-smpp'),
                      registered_delivery: 1 }, (resp) => {
    out({ event: 'submit_sm_resp', command_status: resp.command_status, message_id: resp.message_id });
  });
});
session.on('close', () => { out({ event: 'closed' }); process.exit(0); });
setTimeout(() => { out({ event: 'timeout' }); process.exit(2); }, 20000);
