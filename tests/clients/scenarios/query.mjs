// Query through the JS SDK v3: paging through many items with Limit in both directions (by hand and with
// the SDK's paginator), key conditions on N and S sort keys, filters, counts, projections.
import { DeleteTableCommand, PutItemCommand, QueryCommand, paginateQuery } from "@aws-sdk/client-dynamodb";
import { QueryCommand as DocQueryCommand } from "@aws-sdk/lib-dynamodb";
import { bounded, pad } from "../lib.mjs";

const ITEMS = 240;
const PAGE = 17;
const MAX_PAGES = 200;

export default async function query(s) {
  const N = s.table("qn");
  const S = s.table("qs");
  await s.createTable(N, { rangeKey: "sk", rangeType: "N" });
  const c = s.client;
  await s.requireOperation("Query", () => c.send(new QueryCommand({
    TableName: N, KeyConditionExpression: "pk = :p", ExpressionAttributeValues: { ":p": { S: "probe" } },
  })));
  await s.createTable(S, { rangeKey: "sk", rangeType: "S" });

  // Sort keys include negatives and fractions so the order is numeric, not textual.
  const sortKeys = Array.from({ length: ITEMS }, (_, i) => (i - 100) / 4);
  await bounded(ITEMS, 16, (i) => c.send(new PutItemCommand({
    TableName: N, Item: { pk: { S: "p" }, sk: { N: String(sortKeys[i]) }, even: { BOOL: i % 2 === 0 }, i: { N: String(i) } },
  })));
  await bounded(10, 10, (i) => c.send(new PutItemCommand({ TableName: N, Item: { pk: { S: `other${i}` }, sk: { N: "0" } } })));
  const wantAsc = [...sortKeys].sort((a, b) => a - b).map(String);

  const byHand = async (forward) => {
    const got = [];
    let start;
    for (let pages = 0; pages < MAX_PAGES; pages++) {
      const out = await c.send(new QueryCommand({
        TableName: N, KeyConditionExpression: "pk = :p", ExpressionAttributeValues: { ":p": { S: "p" } },
        Limit: PAGE, ScanIndexForward: forward, ExclusiveStartKey: start, ConsistentRead: true,
      }));
      s.check(out.Count === out.Items.length && out.Items.length <= PAGE, "Query page Count and Limit", out.Count);
      got.push(...out.Items.map((it) => it.sk.N));
      start = out.LastEvaluatedKey;
      if (!start) return got;
    }
    s.check(false, `Query paging ended within ${MAX_PAGES} pages`, got.length);
    return got;
  };
  s.equal(await byHand(true), wantAsc, "Query forward with Limit, following LastEvaluatedKey");
  s.equal(await byHand(false), [...wantAsc].reverse(), "Query ScanIndexForward=false with Limit");

  const viaPaginator = [];
  for await (const page of paginateQuery({ client: c, pageSize: PAGE }, {
    TableName: N, KeyConditionExpression: "pk = :p", ExpressionAttributeValues: { ":p": { S: "p" } }, ScanIndexForward: false,
    ConsistentRead: true,
  })) {
    viaPaginator.push(...page.Items.map((it) => it.sk.N));
    if (viaPaginator.length > ITEMS * 2) break;
  }
  s.equal(viaPaginator, [...wantAsc].reverse(), "paginateQuery backwards");

  const between = await c.send(new QueryCommand({
    TableName: N, KeyConditionExpression: "pk = :p AND sk BETWEEN :lo AND :hi",
    ExpressionAttributeValues: { ":p": { S: "p" }, ":lo": { N: "-1" }, ":hi": { N: "1.5" } }, ConsistentRead: true,
  }));
  s.equal(between.Items.map((it) => it.sk.N), ["-1", "-0.75", "-0.5", "-0.25", "0", "0.25", "0.5", "0.75", "1", "1.25", "1.5"],
    "Query sk BETWEEN on a number sort key");
  const filtered = await c.send(new QueryCommand({
    TableName: N, KeyConditionExpression: "pk = :p AND sk < :z", FilterExpression: "even = :t",
    ExpressionAttributeValues: { ":p": { S: "p" }, ":z": { N: "0" }, ":t": { BOOL: true } }, ProjectionExpression: "i",
    ConsistentRead: true,
  }));
  s.equal([filtered.Count, filtered.ScannedCount], [50, 100], "Query FilterExpression: Count after, ScannedCount before the filter");
  s.check(filtered.Items.every((it) => Object.keys(it).join() === "i"), "Query ProjectionExpression", filtered.Items[0]);
  const counted = await c.send(new QueryCommand({
    TableName: N, KeyConditionExpression: "pk = :p", ExpressionAttributeValues: { ":p": { S: "p" } }, Select: "COUNT",
    ConsistentRead: true,
  }));
  s.equal([counted.Count, counted.Items], [ITEMS, undefined], "Query Select COUNT");

  await bounded(30, 10, (i) => c.send(new PutItemCommand({
    TableName: S, Item: { pk: { S: "s" }, sk: { S: `${i % 3 === 0 ? "a" : "b"}#${pad(i)}` } },
  })));
  const prefixed = await s.doc.send(new DocQueryCommand({
    TableName: S, KeyConditionExpression: "pk = :p AND begins_with(sk, :a)", ExpressionAttributeValues: { ":p": "s", ":a": "a#" },
    ConsistentRead: true,
  }));
  s.equal(prefixed.Items.map((it) => it.sk), Array.from({ length: 10 }, (_, k) => `a#${pad(k * 3)}`),
    "DocumentClient Query begins_with on a string sort key");

  await s.expectError("Query without the partition key", "ValidationException", /^Query condition missed key schema element/,
    () => c.send(new QueryCommand({ TableName: N, KeyConditionExpression: "sk = :z", ExpressionAttributeValues: { ":z": { N: "0" } } })));
  await s.expectError("Query on a missing table", "ResourceNotFoundException", undefined,
    () => c.send(new QueryCommand({ TableName: s.table("missing"), KeyConditionExpression: "pk = :p",
      ExpressionAttributeValues: { ":p": { S: "p" } } })));

  await c.send(new DeleteTableCommand({ TableName: N }));
  await c.send(new DeleteTableCommand({ TableName: S }));
}
