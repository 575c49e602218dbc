// Reads {secret, body, headers} lines as JSON on stdin and verifies each
// with the official Standard Webhooks library; prints "ok" or the error.
import { Webhook } from "standardwebhooks";
import { createInterface } from "node:readline";

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const { secret, body, headers } = JSON.parse(line);
  try {
    new Webhook(secret).verify(body, headers);
    console.log("ok");
  } catch (err) {
    console.log("fail: " + err.message);
  }
}
