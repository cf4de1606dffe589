// Transactions through the JS SDK v3: TransactWriteItems with the client and the DocumentClient (every
// action kind, over two tables), a cancellation with its reasons, ClientRequestToken, TransactGetItems.
import {
  DeleteTableCommand, TransactGetItemsCommand, TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import { GetCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";

export default async function transactions(s) {
  const A = s.table("txa");
  const B = s.table("txb");
  const c = s.client;
  await s.createTable(A);
  await s.createTable(B, { rangeKey: "sk", rangeType: "N" });
  await s.requireOperation("TransactWriteItems", () => c.send(new TransactWriteItemsCommand({
    TransactItems: [{ Put: { TableName: A, Item: { pk: { S: "probe" } } } }],
  })));

  await s.doc.send(new TransactWriteCommand({ TransactItems: [
    { Put: { TableName: A, Item: { pk: "alice", bal: 100, tags: new Set(["x"]) } } },
    { Put: { TableName: A, Item: { pk: "bob", bal: 5 } } },
    { Put: { TableName: B, Item: { pk: "log", sk: 1, what: "opened" } } },
  ] }));
  await s.doc.send(new TransactWriteCommand({ TransactItems: [
    { Update: { TableName: A, Key: { pk: "alice" }, UpdateExpression: "SET bal = bal - :a",
      ConditionExpression: "bal >= :a", ExpressionAttributeValues: { ":a": 30 } } },
    { Update: { TableName: A, Key: { pk: "bob" }, UpdateExpression: "SET bal = bal + :a",
      ExpressionAttributeValues: { ":a": 30 } } },
    { ConditionCheck: { TableName: B, Key: { pk: "log", sk: 1 }, ConditionExpression: "attribute_exists(what)" } },
    { Delete: { TableName: A, Key: { pk: "probe" } } },
  ] }));
  const bob = await s.doc.send(new GetCommand({ TableName: A, Key: { pk: "bob" }, ConsistentRead: true }));
  s.equal(bob.Item, { pk: "bob", bal: 35 }, "a transfer over two tables applied");

  const err = await s.expectError("a failed condition cancels the transaction", "TransactionCanceledException",
    "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]",
    () => c.send(new TransactWriteItemsCommand({ TransactItems: [
      { Put: { TableName: B, Item: { pk: { S: "log" }, sk: { N: "2" } } } },
      { Update: { TableName: A, Key: { pk: { S: "bob" } }, UpdateExpression: "SET bal = :z",
        ConditionExpression: "bal > :big", ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        ExpressionAttributeValues: { ":z": { N: "0" }, ":big": { N: "1000" } } } },
    ] })));
  s.equal(err?.CancellationReasons?.map((r) => r.Code), ["None", "ConditionalCheckFailed"], "CancellationReasons");
  s.equal(err?.CancellationReasons?.[1]?.Item, { pk: { S: "bob" }, bal: { N: "35" } }, "ALL_OLD on the failed check");

  const token = { ClientRequestToken: "js-token-1", TransactItems: [
    { Update: { TableName: A, Key: { pk: { S: "alice" } }, UpdateExpression: "ADD visits :one",
      ExpressionAttributeValues: { ":one": { N: "1" } } } },
    { Put: { TableName: B, Item: { pk: { S: "log" }, sk: { N: "3" } } } },
  ] };
  await c.send(new TransactWriteItemsCommand(token));
  await c.send(new TransactWriteItemsCommand(token));
  await s.expectError("the token with other parameters", "IdempotentParameterMismatchException", undefined,
    () => c.send(new TransactWriteItemsCommand({ ...token, TransactItems: token.TransactItems.slice(1) })));

  const got = await c.send(new TransactGetItemsCommand({ TransactItems: [
    { Get: { TableName: A, Key: { pk: { S: "alice" } }, ProjectionExpression: "bal, visits" } },
    { Get: { TableName: B, Key: { pk: { S: "log" }, sk: { N: "2" } } } },
    { Get: { TableName: A, Key: { pk: { S: "probe" } } } },
  ] }));
  s.equal(got.Responses, [{ Item: { bal: { N: "70" }, visits: { N: "1" } } }, {}, {}],
    "TransactGetItems: the token applied once, the cancelled put never, the deleted item gone");

  await c.send(new DeleteTableCommand({ TableName: A }));
  await c.send(new DeleteTableCommand({ TableName: B }));
}
