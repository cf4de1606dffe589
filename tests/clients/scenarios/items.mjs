// Single-item operations through the JS SDK v3 (low-level and DocumentClient): put/get/update/delete
// with conditions and ReturnValues, and the errors by `err.name` with DynamoDB's own messages.
import {
  DeleteItemCommand, DeleteTableCommand, GetItemCommand, PutItemCommand, UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";

export default async function items(s) {
  const T = s.table("items");
  const R = s.table("ritems");
  await s.createTable(T);
  await s.createTable(R, { rangeKey: "sk", rangeType: "N" });
  const c = s.client;
  const get = async (Key, table = T) => (await c.send(new GetItemCommand({ TableName: table, Key, ConsistentRead: true }))).Item;

  // ---- put ----------------------------------------------------------------------------------------------
  const item = {
    pk: { S: "u1" }, name: { S: "Ann" }, age: { N: "30" }, big: { N: "12345678901234567890123456789012345678" },
    tags: { SS: ["a", "b"] }, nums: { NS: ["1", "2.5"] }, bin: { B: new Uint8Array([0, 1, 2, 255]) },
    bins: { BS: [new Uint8Array([1]), new Uint8Array([2, 3])] }, ok: { BOOL: true }, nothing: { NULL: true },
    mp: { M: { deep: { L: [{ S: "x" }, { N: "1" }, { M: {} }] } } }, empty: { S: "" },
  };
  const put = await c.send(new PutItemCommand({ TableName: T, Item: item }));
  s.equal(put.Attributes, undefined, "PutItem with no ReturnValues returns no Attributes");
  s.equal(await get({ pk: { S: "u1" } }), item, "GetItem returns every attribute type as written");
  const projected = (await c.send(new GetItemCommand({
    TableName: T, Key: { pk: { S: "u1" } }, ProjectionExpression: "#n, mp.deep[0], tags", ConsistentRead: true,
    ExpressionAttributeNames: { "#n": "name" },
  }))).Item;
  s.equal(projected, { name: { S: "Ann" }, mp: { M: { deep: { L: [{ S: "x" }] } } }, tags: { SS: ["a", "b"] } },
    "GetItem ProjectionExpression with a name placeholder and a list index");
  s.equal((await c.send(new GetItemCommand({ TableName: T, Key: { pk: { S: "nobody" } } }))).Item, undefined,
    "GetItem of a missing key has no Item");

  const replaced = await c.send(new PutItemCommand({
    TableName: T, Item: { pk: { S: "u1" }, v: { N: "1" } }, ReturnValues: "ALL_OLD",
  }));
  s.equal(replaced.Attributes, item, "PutItem ReturnValues ALL_OLD returns the replaced item");
  await s.expectError("PutItem attribute_not_exists on an existing key", "ConditionalCheckFailedException",
    "The conditional request failed",
    () => c.send(new PutItemCommand({ TableName: T, Item: { pk: { S: "u1" } }, ConditionExpression: "attribute_not_exists(pk)" })));
  const failed = await s.expectError("PutItem failed condition with ReturnValuesOnConditionCheckFailure",
    "ConditionalCheckFailedException", undefined,
    () => c.send(new PutItemCommand({
      TableName: T, Item: { pk: { S: "u1" } }, ConditionExpression: "v = :two",
      ExpressionAttributeValues: { ":two": { N: "2" } }, ReturnValuesOnConditionCheckFailure: "ALL_OLD",
    })));
  s.equal(failed?.Item, { pk: { S: "u1" } , v: { N: "1" } },
    "ConditionalCheckFailedException carries Item with ReturnValuesOnConditionCheckFailure ALL_OLD");
  await c.send(new PutItemCommand({
    TableName: T, Item: { pk: { S: "u2" }, v: { N: "1" } }, ConditionExpression: "attribute_not_exists(pk)",
  }));
  await c.send(new PutItemCommand({
    TableName: T, Item: { pk: { S: "u2" }, v: { N: "2" } }, ConditionExpression: "v = :one AND size(pk) = :two",
    ExpressionAttributeValues: { ":one": { N: "1" }, ":two": { N: "2" } },
  }));
  s.equal(await get({ pk: { S: "u2" } }), { pk: { S: "u2" }, v: { N: "2" } }, "PutItem with a passing condition");

  // ---- update -------------------------------------------------------------------------------------------
  const upd = (input) => c.send(new UpdateItemCommand({ TableName: T, Key: { pk: { S: "u3" } }, ...input }));
  const created = await upd({
    UpdateExpression: "SET #c = if_not_exists(#c, :zero) + :one, l = list_append(if_not_exists(l, :empty), :l)",
    ExpressionAttributeNames: { "#c": "count" },
    ExpressionAttributeValues: { ":zero": { N: "0" }, ":one": { N: "1" }, ":empty": { L: [] }, ":l": { L: [{ S: "a" }] } },
    ReturnValues: "ALL_NEW",
  });
  s.equal(created.Attributes, { pk: { S: "u3" }, count: { N: "1" }, l: { L: [{ S: "a" }] } },
    "UpdateItem creates the item (upsert) and ReturnValues ALL_NEW");
  const updatedOld = await upd({
    UpdateExpression: "ADD #c :five, s :set REMOVE l", ExpressionAttributeNames: { "#c": "count" },
    ExpressionAttributeValues: { ":five": { N: "5" }, ":set": { SS: ["x", "y"] } }, ReturnValues: "UPDATED_OLD",
  });
  s.equal(updatedOld.Attributes, { count: { N: "1" }, l: { L: [{ S: "a" }] } }, "UpdateItem ReturnValues UPDATED_OLD");
  const updatedNew = await upd({
    UpdateExpression: "SET price = :p DELETE s :x", ExpressionAttributeValues: { ":p": { N: "0.1" }, ":x": { SS: ["x"] } },
    ReturnValues: "UPDATED_NEW",
  });
  s.equal(updatedNew.Attributes, { price: { N: "0.1" }, s: { SS: ["y"] } }, "UpdateItem ReturnValues UPDATED_NEW");
  const allOld = await upd({ UpdateExpression: "SET price = price + :p", ExpressionAttributeValues: { ":p": { N: "0.2" } }, ReturnValues: "ALL_OLD" });
  s.equal(allOld.Attributes, { pk: { S: "u3" }, count: { N: "6" }, price: { N: "0.1" }, s: { SS: ["y"] } },
    "UpdateItem ReturnValues ALL_OLD");
  s.equal((await get({ pk: { S: "u3" } })).price, { N: "0.3" }, "number arithmetic is exact decimal (0.1 + 0.2)");
  const none = await upd({ UpdateExpression: "SET a.b = :v", ExpressionAttributeValues: { ":v": { N: "1" } } })
    .catch((err) => err);
  s.check(none.name === "ValidationException" && none.message === "The document path provided in the update expression is invalid for update",
    "UpdateItem SET on a path under a missing map: ValidationException about the document path", `${none.name}: ${none.message}`);
  await s.expectError("UpdateItem condition fails", "ConditionalCheckFailedException", "The conditional request failed",
    () => upd({ UpdateExpression: "SET v = :v", ConditionExpression: "#c > :big", ExpressionAttributeNames: { "#c": "count" },
      ExpressionAttributeValues: { ":v": { N: "1" }, ":big": { N: "100" } } }));
  await s.expectError("UpdateItem on a key attribute", "ValidationException",
    /^One or more parameter values were invalid: Cannot update attribute pk\. This attribute is part of the key$/,
    () => upd({ UpdateExpression: "SET pk = :v", ExpressionAttributeValues: { ":v": { S: "z" } } }));
  await s.expectError("UpdateItem with a syntax error", "ValidationException", /^Invalid UpdateExpression: Syntax error; token: /,
    () => upd({ UpdateExpression: "SET = :v", ExpressionAttributeValues: { ":v": { S: "z" } } }));
  await s.expectError("UpdateItem with an undefined value placeholder", "ValidationException",
    "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :nope",
    () => upd({ UpdateExpression: "SET v = :nope" }));
  await s.expectError("UpdateItem with an unused value placeholder", "ValidationException",
    "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}",
    () => upd({ UpdateExpression: "SET v = :v", ExpressionAttributeValues: { ":v": { N: "1" }, ":unused": { N: "2" } } }));
  await s.expectError("UpdateItem ADD to a string", "ValidationException",
    /^Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD/,
    () => upd({ UpdateExpression: "ADD pk2 :v", ConditionExpression: "attribute_exists(pk)",
      ExpressionAttributeValues: { ":v": { S: "s" } } }));

  // ---- key and item validation --------------------------------------------------------------------------
  await s.expectError("GetItem with the wrong key attribute", "ValidationException",
    "The provided key element does not match the schema",
    () => c.send(new GetItemCommand({ TableName: T, Key: { id: { S: "a" } } })));
  await s.expectError("GetItem with a key of the wrong type", "ValidationException",
    "The provided key element does not match the schema",
    () => c.send(new GetItemCommand({ TableName: T, Key: { pk: { N: "1" } } })));
  await s.expectError("GetItem without the sort key", "ValidationException",
    "The provided key element does not match the schema",
    () => c.send(new GetItemCommand({ TableName: R, Key: { pk: { S: "a" } } })));
  await s.expectError("PutItem without the key", "ValidationException",
    "One or more parameter values were invalid: Missing the key pk in the item",
    () => c.send(new PutItemCommand({ TableName: T, Item: { v: { S: "a" } } })));
  await s.expectError("PutItem with a key of the wrong type", "ValidationException",
    "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N",
    () => c.send(new PutItemCommand({ TableName: T, Item: { pk: { N: "1" } } })));
  await s.expectError("PutItem with an empty string key", "ValidationException",
    "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: pk",
    () => c.send(new PutItemCommand({ TableName: T, Item: { pk: { S: "" } } })));
  // DynamoDB says "Return values set to invalid value"; dynalite "ReturnValues can only be ALL_OLD or NONE".
  await s.expectError("PutItem ReturnValues ALL_NEW", "ValidationException", /^Return ?values/i,
    () => c.send(new PutItemCommand({ TableName: T, Item: { pk: { S: "a" } }, ReturnValues: "ALL_NEW" })));
  await s.expectError("PutItem with an empty string set", "ValidationException",
    /^One or more parameter values were invalid: An string set {2}may not be empty/,
    () => c.send(new PutItemCommand({ TableName: T, Item: { pk: { S: "a" }, ss: { SS: [] } } })));
  await s.expectError("PutItem over 400 KB", "ValidationException", "Item size has exceeded the maximum allowed size",
    () => c.send(new PutItemCommand({ TableName: T, Item: { pk: { S: "big" }, v: { S: "x".repeat(410 * 1024) } } })));
  await s.expectError("PutItem with a number beyond 38 digits", "ValidationException",
    "Attempting to store more than 38 significant digits in a Number",
    () => c.send(new PutItemCommand({ TableName: T, Item: { pk: { S: "a" }, n: { N: "1".repeat(39) } } })));
  await s.expectError("PutItem on a missing table", "ResourceNotFoundException", undefined,
    () => c.send(new PutItemCommand({ TableName: s.table("missing"), Item: { pk: { S: "a" } } })));

  // ---- delete -------------------------------------------------------------------------------------------
  await s.expectError("DeleteItem with a failing condition", "ConditionalCheckFailedException", "The conditional request failed",
    () => c.send(new DeleteItemCommand({ TableName: T, Key: { pk: { S: "u2" } }, ConditionExpression: "v = :v",
      ExpressionAttributeValues: { ":v": { N: "9" } } })));
  const del = await c.send(new DeleteItemCommand({
    TableName: T, Key: { pk: { S: "u2" } }, ConditionExpression: "attribute_exists(v)", ReturnValues: "ALL_OLD",
  }));
  s.equal(del.Attributes, { pk: { S: "u2" }, v: { N: "2" } }, "DeleteItem ReturnValues ALL_OLD");
  s.equal(await get({ pk: { S: "u2" } }), undefined, "the deleted item is gone");
  const delMissing = await c.send(new DeleteItemCommand({ TableName: T, Key: { pk: { S: "u2" } }, ReturnValues: "ALL_OLD" }));
  s.equal(delMissing.Attributes, undefined, "DeleteItem of a missing item returns no Attributes");

  // ---- hash+range table ---------------------------------------------------------------------------------
  await c.send(new PutItemCommand({ TableName: R, Item: { pk: { S: "a" }, sk: { N: "-1.50" }, v: { S: "x" } } }));
  s.equal(await get({ pk: { S: "a" }, sk: { N: "-1.5" } }, R), { pk: { S: "a" }, sk: { N: "-1.5" }, v: { S: "x" } },
    "a numeric sort key is found by an equal number written differently and comes back normalised");

  // ---- DocumentClient (native JS values) ----------------------------------------------------------------
  const doc = s.doc;
  await doc.send(new PutCommand({
    TableName: T, Item: { pk: "doc", n: 42, f: 1.25, s: "text", b: true, nul: null, lst: [1, "two", { three: 3 }],
      set: new Set(["p", "q"]), map: { deep: { x: [] } } },
  }));
  const docGot = (await doc.send(new GetCommand({ TableName: T, Key: { pk: "doc" }, ConsistentRead: true }))).Item;
  s.equal(docGot, { pk: "doc", n: 42, f: 1.25, s: "text", b: true, nul: null, lst: [1, "two", { three: 3 }],
    set: new Set(["p", "q"]), map: { deep: { x: [] } } }, "DocumentClient put/get round-trips native values");
  const docUpd = await doc.send(new UpdateCommand({
    TableName: T, Key: { pk: "doc" }, UpdateExpression: "SET n = n + :one, lst[1] = :s", ConditionExpression: "b = :t",
    ExpressionAttributeValues: { ":one": 1, ":s": "deux", ":t": true }, ReturnValues: "UPDATED_NEW",
  }));
  s.equal(docUpd.Attributes, { n: 43, lst: ["deux"] }, "DocumentClient update with UPDATED_NEW on a list element");
  const docDel = await doc.send(new DeleteCommand({ TableName: T, Key: { pk: "doc" }, ReturnValues: "ALL_OLD" }));
  s.equal(docDel.Attributes?.n, 43, "DocumentClient delete ALL_OLD");

  // ---- capacity -----------------------------------------------------------------------------------------
  const cap = await c.send(new PutItemCommand({ TableName: T, Item: { pk: { S: "cap" } }, ReturnConsumedCapacity: "TOTAL" }));
  s.equal(cap.ConsumedCapacity, { TableName: T, CapacityUnits: 1 }, "PutItem ReturnConsumedCapacity TOTAL");
  const capRead = await c.send(new GetItemCommand({ TableName: T, Key: { pk: { S: "cap" } }, ReturnConsumedCapacity: "TOTAL" }));
  s.equal(capRead.ConsumedCapacity, { TableName: T, CapacityUnits: 0.5 }, "eventually consistent GetItem costs 0.5 RCU");

  await c.send(new DeleteTableCommand({ TableName: T }));
  await c.send(new DeleteTableCommand({ TableName: R }));
}
