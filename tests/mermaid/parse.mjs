// Reads Mermaid diagrams from stdin (JSON list of strings), parses each with mermaid.parse, prints a JSON list of
// {ok, type, error}. Used by tests/test_report_mermaid.py.
import { JSDOM } from "jsdom";
// mermaid 11+ sanitises labels with DOMPurify, which needs a DOM even to parse: give it jsdom's.
const { window } = new JSDOM("");
globalThis.window = window;
globalThis.document = window.document;
const { default: mermaid } = await import("mermaid");
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const diagrams = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const out = [];
for (const text of diagrams) {
  try {
    const r = await mermaid.parse(text);
    out.push({ ok: true, type: r.diagramType });
  } catch (e) {
    out.push({ ok: false, error: String(e && e.message ? e.message : e) });
  }
}
process.stdout.write(JSON.stringify(out));
