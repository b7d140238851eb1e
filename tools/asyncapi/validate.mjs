// Validates an AsyncAPI document with the AsyncAPI project's own parser (@asyncapi/parser).
// Usage: node validate.mjs DOCUMENT.json
// Prints every diagnostic as one JSON line {severity, code, message, path}; exits 1 when any
// has error severity (or the document cannot be parsed at all), else 0.
import { readFileSync } from "node:fs";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const path = process.argv[2];
if (!path) {
  console.error("usage: node validate.mjs DOCUMENT.json");
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(path, "utf8"));
const names = { 0: "error", 1: "warning", 2: "information", 3: "hint" };
for (const d of diagnostics) {
  console.log(JSON.stringify({
    severity: names[d.severity] ?? String(d.severity),
    code: d.code,
    message: d.message,
    path: d.path.join("."),
  }));
}
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
if (document === undefined || errors.length > 0) {
  console.error(`${path}: ${errors.length} error(s); not a valid AsyncAPI document`);
  process.exit(1);
}
console.error(`${path}: valid AsyncAPI ${document.version()} (${document.channels().length} channels)`);
