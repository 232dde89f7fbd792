// node-smpp as an SMSC: answers binds and submits, sends a receipt for each submit
// that asks for one, answers enquire_link and unbind. Prints {"port": N} first.
const smpp = require('smpp');
const out = (o) => console.log(JSON.stringify(o));
let next = 1000;
const server = smpp.createServer((session) => {
  session.on('bind_transceiver', (pdu) => { out({ event: 'bind', system_id: pdu.system_id }); session.send(pdu.response({ system_id: 'nodesmsc' })); });
  session.on('submit_sm', (pdu) => {
    const id = String(next++);
    const text = Buffer.from(pdu.short_message.message || pdu.short_message).toString('latin1');
    out({ event: 'submit_sm', destination_addr: pdu.destination_addr, text, message_id: id });
    session.send(pdu.response({ message_id: id }));
    if (pdu.registered_delivery) {
      session.deliver_sm({ source_addr: pdu.destination_addr, destination_addr: pdu.source_addr, esm_class: 4,
                           short_message: { message: `id:${id} sub:001 dlvrd:001 submit date:2611250000 done date:2611250000 stat:DELIVRD err:000 text:` },
                           receipted_message_id: id, message_state: 2 });
    }
  });
  session.on('enquire_link', (pdu) => { out({ event: 'enquire_link' }); session.send(pdu.response()); });
  session.on('unbind', (pdu) => { out({ event: 'unbind' }); session.send(pdu.response()); session.close(); });
  session.on('error', () => {});
});
server.listen(0, '127.0.0.1', () => out({ port: server.address().port }));
setTimeout(() => process.exit(0), 30000);
