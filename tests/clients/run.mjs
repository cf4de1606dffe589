#!/usr/bin/env node
// Runs one scenario against a ddb endpoint and prints one JSON line for the pytest side:
//   {"ok": bool, "checks": n, "mismatches": [{what, got}], "notes": [...]}  or  {"skip": "reason"}
// Usage: node run.mjs <scenario> <endpoint> [table-prefix]
import { Scenario, Skip } from "./lib.mjs";

const SCENARIO_TIMEOUT_MS = 240000;
const [name, endpoint, prefix = `js${process.pid}`] = process.argv.slice(2);
if (!name || !endpoint || !/^[a-z_]+$/.test(name)) {
  console.error("usage: node run.mjs <scenario> <endpoint> [table-prefix]");
  process.exit(2);
}

const timer = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: `scenario ${name} ran past ${SCENARIO_TIMEOUT_MS} ms` }));
  process.exit(1);
}, SCENARIO_TIMEOUT_MS);

const scenario = new Scenario(endpoint, prefix);
let exitCode = 0;
try {
  const { default: run } = await import(`./scenarios/${name}.mjs`);
  await run(scenario);
  const result = scenario.result();
  console.log(JSON.stringify(result));
  exitCode = result.ok ? 0 : 1;
} catch (err) {
  if (err instanceof Skip) {
    console.log(JSON.stringify({ skip: err.message }));
  } else {
    const partial = scenario.result();
    console.log(JSON.stringify({
      ...partial, ok: false, error: `${err.name}: ${err.message}`, metadata: err.$metadata, stack: err.stack,
    }));
    exitCode = 1;
  }
}
clearTimeout(timer);
scenario.client.destroy();
process.exit(exitCode);
