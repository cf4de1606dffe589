// Scan through the JS SDK v3: a 4-segment parallel scan sees every item exactly once; Limit paging by
// hand and with the SDK's paginator; filters and counts.
import { DeleteTableCommand, PutItemCommand, ScanCommand, paginateScan } from "@aws-sdk/client-dynamodb";
import { bounded, pad } from "../lib.mjs";

const ITEMS = 300;
const SEGMENTS = 4;
const MAX_PAGES = 400;

export default async function scan(s) {
  const T = s.table("scan");
  await s.createTable(T);
  const c = s.client;
  await s.requireOperation("Scan", () => c.send(new ScanCommand({ TableName: T, Limit: 1 })));

  await bounded(ITEMS, 16, (i) => c.send(new PutItemCommand({
    TableName: T, Item: { pk: { S: `k${pad(i)}` }, i: { N: String(i) }, odd: { BOOL: i % 2 === 1 } },
  })));
  const want = Array.from({ length: ITEMS }, (_, i) => `k${pad(i)}`);

  const segment = async (Segment) => {
    const keys = [];
    let start;
    for (let pages = 0; pages < MAX_PAGES; pages++) {
      const out = await c.send(new ScanCommand({
        TableName: T, Segment, TotalSegments: SEGMENTS, Limit: 25, ExclusiveStartKey: start, ConsistentRead: true,
      }));
      keys.push(...out.Items.map((it) => it.pk.S));
      start = out.LastEvaluatedKey;
      if (!start) return keys;
    }
    s.check(false, `Scan segment ${Segment} ended within ${MAX_PAGES} pages`, keys.length);
    return keys;
  };
  const perSegment = await Promise.all(Array.from({ length: SEGMENTS }, (_, i) => segment(i)));
  const all = perSegment.flat();
  s.equal(all.length, ITEMS, "4-segment parallel Scan: as many items as written (no duplicates)");
  s.equal([...all].sort(), want, "4-segment parallel Scan: every item exactly once");
  s.check(perSegment.filter((keys) => keys.length > 0).length >= 2, "Scan segments split the items",
    perSegment.map((keys) => keys.length));

  const viaPaginator = [];
  // Consistent: an eventually consistent scan right after the writes may miss the newest ones, as on DynamoDB.
  for await (const page of paginateScan({ client: c, pageSize: 40 }, { TableName: T, ConsistentRead: true })) {
    viaPaginator.push(...page.Items.map((it) => it.pk.S));
    if (viaPaginator.length > ITEMS * 2) break;
  }
  s.equal([...viaPaginator].sort(), want, "paginateScan with pageSize 40");

  const counted = await c.send(new ScanCommand({
    TableName: T, FilterExpression: "odd = :t AND i < :n", ExpressionAttributeValues: { ":t": { BOOL: true }, ":n": { N: "100" } },
    Select: "COUNT", ConsistentRead: true,
  }));
  s.equal([counted.Count, counted.ScannedCount], [50, ITEMS], "Scan FilterExpression with Select COUNT");

  await s.expectError("Scan with Segment but no TotalSegments", "ValidationException", undefined,
    () => c.send(new ScanCommand({ TableName: T, Segment: 1 })));
  await s.expectError("Scan with Segment >= TotalSegments", "ValidationException", undefined,
    () => c.send(new ScanCommand({ TableName: T, Segment: 4, TotalSegments: 4 })));
  await c.send(new DeleteTableCommand({ TableName: T }));
}
