#!/usr/bin/env node
// node-smpp (npm "smpp") as an independent SMPP 3.4 oracle for smpphub's tests.
//
//   node golden.js encode < specs.json   ->  ["hex", ...]
//   node golden.js decode < hexes.json   ->  [{...fields...}, ...]
//
// encode: stdin is a JSON array of
//   {"command": "submit_sm", "sequence_number": 7, "command_status": 0,
//    "fields": {"destination_addr": "4477...", "short_message": {"$hex": "6869"}},
//    "tlvs":   {"sar_msg_ref_num": 5, "message_payload": {"$hex": "..."}}}
// Each spec is built with node-smpp's own `new smpp.PDU(command, options)` and
// serialised with `.toBuffer()`. Field and TLV names are node-smpp's (lib/defs.js);
// TLVs are emitted in the order the spec lists them. Bytes travel as {"$hex": "..."}
// and become Buffers, so node-smpp's text-coding filters never touch them.
//
// decode: stdin is a JSON array of hex strings; each is parsed by node-smpp's
// `new smpp.PDU(buffer)` with its presentation filters (text decoding of
// short_message, Date conversion of times) switched off, so the output is the raw
// wire view: C-strings as strings, octet strings as {"$hex"}, integers as numbers.
// Unknown TLVs appear under their decimal tag. A PDU node-smpp cannot parse gives
// {"$error": "..."}.
'use strict';

const path = require('path');
const smpp = require(path.join(__dirname, 'node_modules', 'smpp'));
const defs = require(path.join(__dirname, 'node_modules', 'smpp', 'lib', 'defs'));

function fromJson(value) {
  if (Array.isArray(value)) return value.map(fromJson);
  if (value && typeof value === 'object') {
    if (typeof value.$hex === 'string') return Buffer.from(value.$hex, 'hex');
    const out = {};
    for (const k of Object.keys(value)) out[k] = fromJson(value[k]);
    return out;
  }
  return value;
}

function toJson(value) {
  if (Buffer.isBuffer(value)) return { $hex: value.toString('hex') };
  if (Array.isArray(value)) return value.map(toJson);
  if (value instanceof Date) return { $date: value.toISOString() };
  if (value && typeof value === 'object') {
    const out = {};
    for (const k of Object.keys(value)) out[k] = toJson(value[k]);
    return out;
  }
  return value;
}

function encodeOne(spec) {
  if (!defs.commands[spec.command]) throw new Error('node-smpp has no command ' + spec.command);
  const options = {
    sequence_number: spec.sequence_number || 0,
    command_status: spec.command_status || 0,
  };
  const fields = fromJson(spec.fields || {});
  for (const k of Object.keys(fields)) options[k] = fields[k];
  const tlvs = fromJson(spec.tlvs || {});
  for (const k of Object.keys(tlvs)) {
    if (!defs.tlvs[k]) throw new Error('node-smpp has no TLV ' + k);
    options[k] = tlvs[k];
  }
  const pdu = new smpp.PDU(spec.command, options);
  return pdu.toBuffer().toString('hex');
}

function decodeOne(hex) {
  const buf = Buffer.from(hex, 'hex');
  const saved = smpp.PDU.prototype._filter;
  smpp.PDU.prototype._filter = function () {};
  try {
    const pdu = new smpp.PDU(buf);
    const out = {};
    for (const k of Object.keys(pdu)) out[k] = toJson(pdu[k]);
    return out;
  } catch (e) {
    return { $error: String(e && e.message || e) };
  } finally {
    smpp.PDU.prototype._filter = saved;
  }
}

function main() {
  const mode = process.argv[2] || 'encode';
  const chunks = [];
  process.stdin.on('data', (c) => chunks.push(c));
  process.stdin.on('end', () => {
    const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '[]');
    let out;
    if (mode === 'encode') out = input.map(encodeOne);
    else if (mode === 'decode') out = input.map(decodeOne);
    else throw new Error('usage: golden.js encode|decode < input.json');
    process.stdout.write(JSON.stringify(out));
  });
}

main();
