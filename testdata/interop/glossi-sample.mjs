// Glossi's documented Node.js receiver check, as its webhook guide gives
// it: HMAC-SHA256 hex over JSON.stringify of the parsed body, compared with
// crypto.timingSafeEqual (which throws when the lengths differ). Reads
// {secret, body, headers} lines as JSON; prints "ok", "invalid" or the
// error the sample would throw.
import crypto from "node:crypto";
import { createInterface } from "node:readline";

function verifyWebhook(payload, signature, secret) {
  const expected = crypto
    .createHmac("sha256", secret)
    .update(JSON.stringify(payload))
    .digest("hex");

  return crypto.timingSafeEqual(Buffer.from(signature), Buffer.from(expected));
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const { secret, body, headers } = JSON.parse(line);
  try {
    const ok = verifyWebhook(JSON.parse(body), headers["x-glossi-signature"], secret);
    console.log(ok ? "ok" : "invalid");
  } catch (err) {
    console.log("throws: " + err.message);
  }
}
