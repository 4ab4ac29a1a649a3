// Verifies webhook requests recorded by webhook_node_verify_test with the official
// standardwebhooks package. Usage: node verify.js <requests.jsonl> <whsec_...>
// Each line: {"headers": {...}, "body_base64": "..."}. Exits 0 when every request verifies and
// every tampered copy (body, id or timestamp changed) is rejected; prints what failed otherwise.
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const { Webhook } = require("standardwebhooks");

const [file, secret] = process.argv.slice(2);
if (!file || !secret) {
  console.error("usage: node verify.js <requests.jsonl> <whsec_...>");
  process.exit(2);
}
const wh = new Webhook(secret);
const lines = fs.readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0);
let verified = 0;
let raw = 0;
let failures = 0;
// The package turns a Buffer payload into a UTF-8 string before signing, so it cannot check a
// body that is not valid UTF-8 (binary CloudEvents data): those are checked on the raw bytes
// with node:crypto, by the same rule ("v1," + base64 HMAC-SHA256 of "id.timestamp.body").
const isUtf8 = (b) => Buffer.from(b.toString("utf8"), "utf8").equals(b);
const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
const rawVerify = (body, headers) => {
  const mac = crypto.createHmac("sha256", key)
    .update(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.`)
    .update(body)
    .digest("base64");
  return headers["webhook-signature"].split(" ").includes(`v1,${mac}`);
};
const rejects = (body, headers) => {
  try {
    wh.verify(body, headers, { jsonParse: false });
    return false;
  } catch (e) {
    return true;
  }
};
for (const line of lines) {
  const { headers, body_base64: b64 } = JSON.parse(line);
  const body = Buffer.from(b64, "base64");
  if (!isUtf8(body)) {
    if (rawVerify(body, headers) && !rawVerify(Buffer.concat([body, Buffer.from(" ")]), headers)) {
      raw++;
    } else {
      failures++;
      console.error(`${headers["webhook-id"]}: raw-bytes signature does not match`);
    }
    continue;
  }
  try {
    wh.verify(body, headers, { jsonParse: false });
    verified++;
  } catch (e) {
    failures++;
    console.error(`${headers["webhook-id"]}: ${e.message}`);
    continue;
  }
  const tampered = [
    [Buffer.concat([body, Buffer.from(" ")]), headers],
    [body, { ...headers, "webhook-id": headers["webhook-id"] + "x" }],
    [body, { ...headers, "webhook-timestamp": String(Number(headers["webhook-timestamp"]) + 1) }],
  ];
  for (const [b, h] of tampered) {
    if (!rejects(b, h)) {
      failures++;
      console.error(`${headers["webhook-id"]}: a tampered copy verified`);
    }
  }
}
console.log(`verified ${verified} of ${lines.length} requests with standardwebhooks, ${raw} ` +
  `non-UTF-8 bodies with node:crypto, ${failures} failures`);
process.exit(failures === 0 && verified > 0 ? 0 : 1);
