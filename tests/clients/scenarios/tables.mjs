// Table operations through the JS SDK v3: create (hash, hash+range), list (with the SDK's paginator),
// describe, delete, and the errors DynamoDB gives for tables that do not exist or already exist.
import {
  CreateTableCommand, DeleteTableCommand, DescribeTableCommand, DescribeTimeToLiveCommand, GetItemCommand,
  ListTablesCommand, UpdateTimeToLiveCommand, paginateListTables, waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";

export default async function tables(s) {
  const hash = s.table("hash");
  const range = s.table("range");

  const created = await s.createTable(hash);
  s.equal(created.TableDescription?.TableName, hash, "CreateTable returns the TableDescription");
  s.check(["CREATING", "ACTIVE"].includes(created.TableDescription?.TableStatus),
    "CreateTable status is CREATING or ACTIVE", created.TableDescription?.TableStatus);
  await s.createTable(range, { rangeKey: "sk", rangeType: "N" });

  const desc = (await s.client.send(new DescribeTableCommand({ TableName: range }))).Table;
  s.equal(desc.TableName, range, "DescribeTable TableName");
  s.equal(desc.TableStatus, "ACTIVE", "DescribeTable status after the waiter");
  s.equal(desc.KeySchema, [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "sk", KeyType: "RANGE" }],
    "DescribeTable KeySchema");
  s.equal([...desc.AttributeDefinitions].sort((a, b) => a.AttributeName.localeCompare(b.AttributeName)),
    [{ AttributeName: "pk", AttributeType: "S" }, { AttributeName: "sk", AttributeType: "N" }],
    "DescribeTable AttributeDefinitions");
  s.equal(desc.BillingModeSummary?.BillingMode, "PAY_PER_REQUEST", "DescribeTable BillingModeSummary");
  s.check(typeof desc.TableArn === "string" && desc.TableArn.startsWith("arn:aws:dynamodb:")
    && desc.TableArn.endsWith(`:table/${range}`), "DescribeTable TableArn", desc.TableArn);
  s.check(desc.CreationDateTime instanceof Date && !Number.isNaN(desc.CreationDateTime.getTime()),
    "DescribeTable CreationDateTime parses as a date", desc.CreationDateTime);
  s.check(typeof desc.ItemCount === "number" && typeof desc.TableSizeBytes === "number",
    "DescribeTable ItemCount and TableSizeBytes are numbers", { ItemCount: desc.ItemCount, size: desc.TableSizeBytes });

  const listed = (await s.client.send(new ListTablesCommand({}))).TableNames;
  s.check(listed.includes(hash) && listed.includes(range), "ListTables names both tables", listed);
  s.equal([...listed].sort(), listed, "ListTables is sorted");

  // Limit 1 forces one page per table; the SDK's paginator follows LastEvaluatedTableName.
  const paged = [];
  let pages = 0;
  for await (const page of paginateListTables({ client: s.client, pageSize: 1 }, {})) {
    paged.push(...page.TableNames);
    pages += 1;
    if (pages > 1000) break;
  }
  s.equal(paged, listed, "paginateListTables with pageSize 1 yields the same names as one ListTables");
  const start = (await s.client.send(new ListTablesCommand({ ExclusiveStartTableName: hash }))).TableNames;
  s.check(!start.includes(hash) && start.every((n) => n > hash), "ListTables ExclusiveStartTableName", start);

  await s.expectError("CreateTable of an existing table", "ResourceInUseException", undefined,
    () => s.client.send(new CreateTableCommand({
      TableName: hash, KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }], BillingMode: "PAY_PER_REQUEST",
    })));
  await s.expectError("CreateTable whose key is not in AttributeDefinitions", "ValidationException", undefined,
    () => s.client.send(new CreateTableCommand({
      TableName: s.table("bad"), KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }], BillingMode: "PAY_PER_REQUEST",
    })));
  await s.expectError("CreateTable with a one-character name", "ValidationException", /tableName/,
    () => s.client.send(new CreateTableCommand({
      TableName: "x", KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }], BillingMode: "PAY_PER_REQUEST",
    })));
  await s.expectError("DescribeTable of a missing table", "ResourceNotFoundException", /^Requested resource not found/,
    () => s.client.send(new DescribeTableCommand({ TableName: s.table("missing") })));
  await s.expectError("GetItem on a missing table", "ResourceNotFoundException", /^Requested resource not found/,
    () => s.client.send(new GetItemCommand({ TableName: s.table("missing"), Key: { pk: { S: "a" } } })));

  // CreateTable answers once the table is ACTIVE (still saying CREATING, as DynamoDB's does), so the SDK's
  // waiter, which looks again only 20 s after a CREATING, finds the table at its first look.
  const quick = s.table("quick");
  await s.client.send(new CreateTableCommand({
    TableName: quick, KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }], BillingMode: "PAY_PER_REQUEST",
  }));
  const waitStarted = Date.now();
  await waitUntilTableExists({ client: s.client, maxWaitTime: 60 }, { TableName: quick });
  const waitedMs = Date.now() - waitStarted;
  s.check(waitedMs < 5000, "waitUntilTableExists with its default delays finds a new table at once", waitedMs);
  // Time to live: enable, describe, and DynamoDB's errors for enabling twice and for another attribute.
  const ttlOff = (await s.client.send(new DescribeTimeToLiveCommand({ TableName: quick }))).TimeToLiveDescription;
  s.equal(ttlOff, { TimeToLiveStatus: "DISABLED" }, "DescribeTimeToLive of a new table");
  const ttlOn = await s.client.send(new UpdateTimeToLiveCommand({
    TableName: quick, TimeToLiveSpecification: { Enabled: true, AttributeName: "expires" },
  }));
  s.equal(ttlOn.TimeToLiveSpecification, { Enabled: true, AttributeName: "expires" }, "UpdateTimeToLive answer");
  s.equal((await s.client.send(new DescribeTimeToLiveCommand({ TableName: quick }))).TimeToLiveDescription,
    { TimeToLiveStatus: "ENABLED", AttributeName: "expires" }, "DescribeTimeToLive once enabled");
  await s.expectError("UpdateTimeToLive enabling it again", "ValidationException", /^TimeToLive is already enabled$/,
    () => s.client.send(new UpdateTimeToLiveCommand({
      TableName: quick, TimeToLiveSpecification: { Enabled: true, AttributeName: "expires" },
    })));
  await s.expectError("UpdateTimeToLive disabling another attribute", "ValidationException",
    /^TimeToLive is active on a different AttributeName: current AttributeName is expires$/,
    () => s.client.send(new UpdateTimeToLiveCommand({
      TableName: quick, TimeToLiveSpecification: { Enabled: false, AttributeName: "other" },
    })));
  await s.client.send(new DeleteTableCommand({ TableName: quick }));
  await s.waitGone(quick);

  const deleted = await s.client.send(new DeleteTableCommand({ TableName: hash }));
  s.equal(deleted.TableDescription?.TableName, hash, "DeleteTable returns the TableDescription");
  await s.waitGone(hash);
  await s.expectError("DeleteTable of a deleted table", "ResourceNotFoundException", undefined,
    () => s.client.send(new DeleteTableCommand({ TableName: hash })));
  const after = (await s.client.send(new ListTablesCommand({}))).TableNames;
  s.check(!after.includes(hash) && after.includes(range), "ListTables after DeleteTable", after);
  await s.client.send(new DeleteTableCommand({ TableName: range }));
  await s.waitGone(range);
}
