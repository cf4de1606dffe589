#!/usr/bin/env node
// Drives the dynamodb-admin web GUI (already running against ddb) with Debian's chromium through
// playwright-core, as a person would: list tables, open one, add an item in the editor, see it.
// Prints one JSON line like run.mjs. Usage:
//   node gui.mjs <admin-url> <ddb-endpoint> <table-prefix> <screenshot-dir> <profile-dir>
import { GetItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { chromium } from "playwright-core";
import { join } from "node:path";
import { Scenario } from "./lib.mjs";

const CHROMIUM = process.env.DDB_CHROMIUM ?? "/usr/bin/chromium";
const STEP_TIMEOUT_MS = 20000;
const RUN_TIMEOUT_MS = 180000;
const [adminUrl, endpoint, prefix, shotDir, profileDir] = process.argv.slice(2);
if (!profileDir) {
  console.error("usage: node gui.mjs <admin-url> <ddb-endpoint> <table-prefix> <screenshot-dir> <profile-dir>");
  process.exit(2);
}
const timer = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: `gui run went past ${RUN_TIMEOUT_MS} ms` }));
  process.exit(1);
}, RUN_TIMEOUT_MS);

const s = new Scenario(endpoint, prefix);
const T = s.table("gui");
let context;
let exitCode = 1;
try {
  // A GSI on `note`, which step 5 queries through the GUI's Query form.
  await s.createTable(T, { rangeKey: "sk", rangeType: "N", extra: {
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }, { AttributeName: "sk", AttributeType: "N" },
      { AttributeName: "note", AttributeType: "S" }],
    GlobalSecondaryIndexes: [{ IndexName: "by_note", Projection: { ProjectionType: "ALL" },
      KeySchema: [{ AttributeName: "note", KeyType: "HASH" }] }],
  } });
  let scanSupported = true;
  await s.requireOperation("Scan", () => s.client.send(new ScanCommand({ TableName: T, Limit: 1 })))
    .catch(() => { scanSupported = false; });

  // A persistent context is how playwright takes a user-data-dir; the flags keep chromium off the network.
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 800 },
    timeout: STEP_TIMEOUT_MS,
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = context.pages()[0] ?? await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (err) => pageErrors.push(err.message));
  page.on("dialog", (dialog) => { pageErrors.push(`dialog: ${dialog.message()}`); dialog.dismiss(); });

  // 1. The table list (ListTables + DescribeTable per table).
  const home = await page.goto(adminUrl);
  s.equal(home.status(), 200, "GET / (table list) status");
  const link = page.locator(`a[href$="/tables/${encodeURIComponent(T)}"]`);
  s.check(await link.count() === 1, "the table list links the table", await page.locator("body").innerText());
  await page.screenshot({ path: join(shotDir, "1-tables.png"), fullPage: true });

  // 2. Open the table (its page renders from DescribeTable; the item grid is filled by Scan).
  await link.click();
  await page.waitForURL(`**/tables/${encodeURIComponent(T)}`);
  s.check((await page.locator("body").innerText()).includes(T), "the table page names the table", page.url());

  // 3. Add an item through the editor; Save does PutItem then GetItem and opens the item's page.
  const item = { pk: "from-gui", sk: 7, note: "added in dynamodb-admin", tags: ["a", "b"] };
  const added = await page.goto(`${adminUrl}/tables/${encodeURIComponent(T)}/add-item`);
  s.equal(added.status(), 200, "GET add-item status");
  await page.waitForFunction(() => typeof editor !== "undefined" && typeof editor.setValue === "function");
  await page.evaluate((json) => editor.setValue(json), JSON.stringify(item, null, 2));
  await page.click("#saveButton");
  // Save either opens the item's page or shows the server's error in an alert.
  const alert = page.locator(".alert-danger");
  await Promise.race([page.waitForURL("**/items/**"), alert.first().waitFor()]);
  if (await alert.count() > 0) {
    // dynamodb-admin reads the item back with an eventually consistent GetItem right after PutItem and
    // answers "Not found" when that read misses the write.
    throw new Error(`Save showed an error: ${await alert.first().innerText()}`);
  }
  s.check(decodeURIComponent(page.url()).endsWith("/items/from-gui,7"), "Save opens the new item's page", page.url());
  await page.waitForLoadState("load");
  try {
    await page.waitForFunction(() => typeof editor !== "undefined" && editor.getValue().includes("from-gui"));
  } catch (err) {
    // The item page reads the item with an eventually consistent GetItem right after the PutItem.
    throw new Error(`item page did not show the new item (eventually consistent read): ${err.message}`);
  }
  const editorText = await page.evaluate(() => editor.getValue());
  s.equal(JSON.parse(editorText), item, "the item page shows the saved item");
  await page.screenshot({ path: join(shotDir, "2-item.png"), fullPage: true });

  const stored = await s.client.send(new GetItemCommand({ TableName: T, Key: { pk: { S: "from-gui" }, sk: { N: "7" } }, ConsistentRead: true }));
  s.equal(stored.Item, { pk: { S: "from-gui" }, sk: { N: "7" }, note: { S: "added in dynamodb-admin" }, tags: { L: [{ S: "a" }, { S: "b" }] } },
    "the item stored by the GUI, read back with the SDK");

  // 4. See it listed in the table's grid (Scan).
  if (scanSupported) {
    await page.goto(`${adminUrl}/tables/${encodeURIComponent(T)}`);
    await page.locator("text=added in dynamodb-admin").first().waitFor();
    s.check(true, "the item appears in the table's grid");
    await page.screenshot({ path: join(shotDir, "3-grid.png"), fullPage: true });
  } else {
    s.notes.push("ddb does not support Scan yet: the table grid was not checked");
  }
  // 5. Query the GSI with the GUI's form: Query, the index, its key's value, Search (a Query with IndexName).
  await page.goto(`${adminUrl}/tables/${encodeURIComponent(T)}`);
  await page.selectOption('select[name="operationType"]', "query");
  await page.selectOption('select[name="queryableSelection"]', "by_note");
  const keyed = await page.evaluate(() => {
    for (const row of document.querySelectorAll("#filters-table tr")) {
      if (row.querySelector(".filter-row-key").value === "note") {
        row.querySelector(".filter-row-value").value = "added in dynamodb-admin";
        return true;
      }
    }
    return false;
  });
  s.check(keyed, "choosing the index adds its key to the form", await page.locator("#filters-table").innerText());
  await page.click('button[type="submit"]');
  await page.waitForURL("**queryableSelection=by_note**");
  await page.locator("#items-container >> text=added in dynamodb-admin").first().waitFor();
  s.check(true, "the GSI Query lists the item");
  await page.screenshot({ path: join(shotDir, "4-index-query.png"), fullPage: true });

  s.equal(pageErrors, [], "no JavaScript errors or alert dialogs in the GUI");
  const result = s.result();
  console.log(JSON.stringify({ ...result, scanSupported }));
  exitCode = result.ok ? 0 : 1;
} catch (err) {
  console.log(JSON.stringify({ ...s.result(), ok: false, error: `${err.name}: ${err.message}`, stack: err.stack }));
} finally {
  await context?.close().catch(() => {});
  clearTimeout(timer);
  s.client.destroy();
}
process.exit(exitCode);
