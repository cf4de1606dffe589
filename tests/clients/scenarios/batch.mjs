// BatchWriteItem and BatchGetItem through the JS SDK v3 (low level and DocumentClient), retrying
// UnprocessedItems / UnprocessedKeys as every real application must.
import {
  BatchGetItemCommand, BatchWriteItemCommand, DeleteTableCommand,
} from "@aws-sdk/client-dynamodb";
import { BatchGetCommand, BatchWriteCommand } from "@aws-sdk/lib-dynamodb";
import { pad } from "../lib.mjs";

const ITEMS = 120;
const MAX_ROUNDS = 20;

export default async function batch(s) {
  const A = s.table("ba");
  const B = s.table("bb");
  await s.createTable(A);
  const c = s.client;
  await s.requireOperation("BatchWriteItem", () => c.send(new BatchWriteItemCommand({
    RequestItems: { [A]: [{ DeleteRequest: { Key: { pk: { S: "probe" } } } }] },
  })));
  await s.requireOperation("BatchGetItem", () => c.send(new BatchGetItemCommand({
    RequestItems: { [A]: { Keys: [{ pk: { S: "probe" } }] } },
  })));
  await s.createTable(B, { rangeKey: "sk", rangeType: "N" });

  const write = async (requestItems) => {
    let pending = requestItems;
    for (let round = 0; round < MAX_ROUNDS && Object.keys(pending).length > 0; round++) {
      pending = (await c.send(new BatchWriteItemCommand({ RequestItems: pending }))).UnprocessedItems ?? {};
    }
    s.equal(pending, {}, "BatchWriteItem UnprocessedItems drained");
  };
  for (let base = 0; base < ITEMS; base += 25) {
    const puts = [];
    for (let i = base; i < Math.min(base + 25, ITEMS); i++) {
      // Both tables in one request.
      const table = i % 2 === 0 ? A : B;
      const Item = table === A ? { pk: { S: `k${pad(i)}` }, i: { N: String(i) } } : { pk: { S: "b" }, sk: { N: String(i) } };
      (puts[table] ??= []).push({ PutRequest: { Item } });
    }
    await write(Object.fromEntries(Object.entries(puts)));
  }

  const get = async (requestItems) => {
    const got = {};
    let pending = requestItems;
    for (let round = 0; round < MAX_ROUNDS && Object.keys(pending).length > 0; round++) {
      const out = await c.send(new BatchGetItemCommand({ RequestItems: pending }));
      for (const [table, items] of Object.entries(out.Responses ?? {})) (got[table] ??= []).push(...items);
      pending = out.UnprocessedKeys ?? {};
    }
    s.equal(pending, {}, "BatchGetItem UnprocessedKeys drained");
    return got;
  };
  const keysA = Array.from({ length: 60 }, (_, k) => ({ pk: { S: `k${pad(2 * k)}` } }));
  keysA.push({ pk: { S: "absent" } });
  const keysB = Array.from({ length: 30 }, (_, k) => ({ pk: { S: "b" }, sk: { N: String(2 * k + 1) } }));
  const got = await get({ [A]: { Keys: keysA, ConsistentRead: true }, [B]: { Keys: keysB, ProjectionExpression: "sk" } });
  s.equal((got[A] ?? []).map((it) => it.pk.S).sort(), keysA.slice(0, 60).map((k) => k.pk.S),
    "BatchGetItem across two tables: table A (a missing key is simply absent)");
  s.equal((got[B] ?? []).map((it) => Number(it.sk.N)).sort((x, y) => x - y), keysB.map((k) => Number(k.sk.N)),
    "BatchGetItem across two tables: table B");
  s.check((got[B] ?? []).every((it) => Object.keys(it).join() === "sk"), "BatchGetItem ProjectionExpression", got[B]?.[0]);

  await write({ [A]: keysA.slice(0, 10).map((Key) => ({ DeleteRequest: { Key } })) });
  const afterDelete = await get({ [A]: { Keys: keysA.slice(0, 12), ConsistentRead: true } });
  s.equal((afterDelete[A] ?? []).map((it) => it.pk.S).sort(), keysA.slice(10, 12).map((k) => k.pk.S),
    "BatchWriteItem DeleteRequest removed the items");

  const doc = s.doc;
  await doc.send(new BatchWriteCommand({ RequestItems: { [A]: [{ PutRequest: { Item: { pk: "doc", tags: new Set(["x"]) } } }] } }));
  const docGot = await doc.send(new BatchGetCommand({ RequestItems: { [A]: { Keys: [{ pk: "doc" }], ConsistentRead: true } } }));
  s.equal(docGot.Responses?.[A], [{ pk: "doc", tags: new Set(["x"]) }], "DocumentClient BatchWrite/BatchGet");

  await s.expectError("BatchWriteItem with 26 requests", "ValidationException", /length less than or equal to 25/,
    () => c.send(new BatchWriteItemCommand({
      RequestItems: { [A]: Array.from({ length: 26 }, (_, i) => ({ PutRequest: { Item: { pk: { S: `x${i}` } } } })) },
    })));
  await s.expectError("BatchWriteItem with the same key twice", "ValidationException",
    "Provided list of item keys contains duplicates",
    () => c.send(new BatchWriteItemCommand({
      RequestItems: { [A]: [{ PutRequest: { Item: { pk: { S: "d" } } } }, { DeleteRequest: { Key: { pk: { S: "d" } } } }] },
    })));
  await s.expectError("BatchGetItem with the same key twice", "ValidationException",
    "Provided list of item keys contains duplicates",
    () => c.send(new BatchGetItemCommand({ RequestItems: { [A]: { Keys: [{ pk: { S: "d" } }, { pk: { S: "d" } }] } } })));
  await s.expectError("BatchGetItem with 101 keys", "ValidationException", /less than or equal to 100/,
    () => c.send(new BatchGetItemCommand({
      RequestItems: { [A]: { Keys: Array.from({ length: 101 }, (_, i) => ({ pk: { S: `x${i}` } })) } },
    })));
  await s.expectError("BatchGetItem on a missing table", "ResourceNotFoundException", undefined,
    () => c.send(new BatchGetItemCommand({ RequestItems: { [s.table("missing")]: { Keys: [{ pk: { S: "a" } }] } } })));

  await c.send(new DeleteTableCommand({ TableName: A }));
  await c.send(new DeleteTableCommand({ TableName: B }));
}
