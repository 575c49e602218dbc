// Reads base64 JSON documents, one a line, and writes for each
// JSON.stringify(JSON.parse(doc)) in base64, or "!" and the error.
import { createInterface } from "node:readline";

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (line === "") continue;
  try {
    const doc = Buffer.from(line, "base64").toString("utf8");
    const out = JSON.stringify(JSON.parse(doc));
    process.stdout.write(Buffer.from(out, "utf8").toString("base64") + "\n");
  } catch (e) {
    process.stdout.write("!" + String(e).replace(/\n/g, " ") + "\n");
  }
}
