// Secondary indexes through the JS SDK v3: a table created with an LSI and a GSI, paginateQuery on each in
// index order, a Scan of the GSI, UpdateTable adding a GSI over items already there, and DynamoDB's errors.
import {
  DeleteTableCommand, PutItemCommand, QueryCommand, ScanCommand, UpdateTableCommand, paginateQuery, paginateScan,
} from "@aws-sdk/client-dynamodb";
import { bounded } from "../lib.mjs";

const ITEMS = 120;

export default async function indexes(s) {
  const T = s.table("idx");
  const c = s.client;
  await s.createTable(T, { rangeKey: "sk", rangeType: "N", extra: {
    AttributeDefinitions: [
      { AttributeName: "pk", AttributeType: "S" }, { AttributeName: "sk", AttributeType: "N" },
      { AttributeName: "rank", AttributeType: "N" }, { AttributeName: "team", AttributeType: "S" },
    ],
    LocalSecondaryIndexes: [{ IndexName: "by_rank", Projection: { ProjectionType: "KEYS_ONLY" },
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "rank", KeyType: "RANGE" }] }],
    GlobalSecondaryIndexes: [{ IndexName: "by_team", Projection: { ProjectionType: "INCLUDE", NonKeyAttributes: ["note"] },
      KeySchema: [{ AttributeName: "team", KeyType: "HASH" }, { AttributeName: "rank", KeyType: "RANGE" }] }],
  } });
  await s.requireOperation("Query on an index", () => c.send(new QueryCommand({
    TableName: T, IndexName: "by_team", KeyConditionExpression: "team = :t", ExpressionAttributeValues: { ":t": { S: "probe" } },
  })));
  const items = Array.from({ length: ITEMS }, (_, i) => {
    const item = { pk: { S: `p${i % 12}` }, sk: { N: String(i) }, rank: { N: String((i * 29) % 97) }, note: { S: `n${i}` },
      other: { S: "x" } };
    if (i % 5) item.team = { S: i % 2 ? "red" : "blue" };
    return item;
  });
  await bounded(ITEMS, 16, (i) => c.send(new PutItemCommand({ TableName: T, Item: items[i] })));

  const red = [];
  for await (const page of paginateQuery({ client: c, pageSize: 7 }, {
    TableName: T, IndexName: "by_team", KeyConditionExpression: "team = :t", ExpressionAttributeValues: { ":t": { S: "red" } },
    ScanIndexForward: false,
  })) {
    red.push(...page.Items);
    if (red.length > ITEMS) break;
  }
  const wantRed = items.filter((it) => it.team?.S === "red").map((it) => Number(it.rank.N)).sort((a, b) => b - a);
  s.equal(red.map((it) => Number(it.rank.N)), wantRed, "paginateQuery on a GSI, backwards, in index order");
  s.equal(Object.keys(red[0]).sort(), ["note", "pk", "rank", "sk", "team"], "a GSI answers its INCLUDE projection");

  const p3 = [];
  for await (const page of paginateQuery({ client: c, pageSize: 2 }, {
    TableName: T, IndexName: "by_rank", KeyConditionExpression: "pk = :p", ExpressionAttributeValues: { ":p": { S: "p3" } },
    ConsistentRead: true,
  })) {
    p3.push(...page.Items.map((it) => Number(it.rank.N)));
    if (p3.length > ITEMS) break;
  }
  s.equal(p3, items.filter((it) => it.pk.S === "p3").map((it) => Number(it.rank.N)).sort((a, b) => a - b),
    "paginateQuery on an LSI, consistent, in index order");

  let scanned = 0;
  for await (const page of paginateScan({ client: c, pageSize: 10 }, { TableName: T, IndexName: "by_team" })) {
    scanned += page.Count;
    if (scanned > ITEMS) break;
  }
  s.equal(scanned, items.filter((it) => it.team).length, "paginateScan on a GSI sees the items holding its key");

  await s.expectError("Consistent Query on a GSI", "ValidationException",
    "Consistent reads are not supported on global secondary indexes",
    () => c.send(new QueryCommand({ TableName: T, IndexName: "by_team", KeyConditionExpression: "team = :t",
      ExpressionAttributeValues: { ":t": { S: "red" } }, ConsistentRead: true })));
  await s.expectError("Select ALL_ATTRIBUTES on a GSI that does not project all", "ValidationException",
    "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index " +
    "by_team because its projection type is not ALL",
    () => c.send(new ScanCommand({ TableName: T, IndexName: "by_team", Select: "ALL_ATTRIBUTES" })));
  await s.expectError("Query on a missing index", "ValidationException", "The table does not have the specified index: nope",
    () => c.send(new QueryCommand({ TableName: T, IndexName: "nope", KeyConditionExpression: "pk = :p",
      ExpressionAttributeValues: { ":p": { S: "p1" } } })));

  const updated = await c.send(new UpdateTableCommand({
    TableName: T, AttributeDefinitions: [{ AttributeName: "note", AttributeType: "S" }],
    GlobalSecondaryIndexUpdates: [{ Create: { IndexName: "by_note", Projection: { ProjectionType: "ALL" },
      KeySchema: [{ AttributeName: "note", KeyType: "HASH" }] } }],
  }));
  s.check(updated.TableDescription.GlobalSecondaryIndexes.some((i) => i.IndexName === "by_note"),
    "UpdateTable answers with the new GSI", updated.TableDescription.GlobalSecondaryIndexes);
  const byNote = await c.send(new QueryCommand({ TableName: T, IndexName: "by_note", KeyConditionExpression: "note = :n",
    ExpressionAttributeValues: { ":n": { S: "n42" } } }));
  s.equal(byNote.Items, [items[42]], "a GSI added by UpdateTable holds the items already there");

  await c.send(new DeleteTableCommand({ TableName: T }));
}
