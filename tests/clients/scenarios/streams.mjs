// DynamoDB Streams through the JS SDK v3's DynamoDBStreamsClient, at the same endpoint as DynamoDB's API: a
// table created with a NEW_AND_OLD_IMAGES stream, writes through the client and the DocumentClient (and a
// failed condition and an unchanged put, which write no record), ListStreams, DescribeStream (and its paging),
// every shard read from TRIM_HORIZON until an empty page, the records of each key in the order written with
// their images, AT_/AFTER_SEQUENCE_NUMBER and LATEST iterators, and the errors of a bad iterator, shard, stream.
import {
  DeleteItemCommand, DeleteTableCommand, DescribeTableCommand, PutItemCommand, UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand, ListStreamsCommand,
} from "@aws-sdk/client-dynamodb-streams";
import { DeleteCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";

const DIGITS = /^[0-9]+$/;

// The streams client as lib.mjs builds the DynamoDB one: same endpoint, region, credentials, bounds and retries,
// with its retried attempts recorded in the same report.
function streamsClient(s) {
  const client = new DynamoDBStreamsClient({
    endpoint: s.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "ddb", secretAccessKey: "ddb" },
    maxAttempts: 3,
    requestHandler: { requestTimeout: 15000, connectionTimeout: 3000 },
  });
  client.middlewareStack.add((next, context) => async (args) => {
    try {
      return await next(args);
    } catch (err) {
      const status = err.$metadata?.httpStatusCode ?? err.$response?.statusCode;
      if (status !== 400 || err.$retryable || /Throttl|LimitExceeded/.test(err.name)) {
        s.retried.push({ operation: context.commandName, status, error: `${err.name}: ${err.message}` });
      }
      throw err;
    }
  }, { step: "finalizeRequest", name: "ddbRecordAttempts", priority: "low" });
  return client;
}

// Every record of one shard from `iterator` on, `limit` a page, until a page comes back empty (an open shard
// always hands out a next iterator). Bounded: 100 pages.
async function readShard(streams, iterator, limit) {
  const records = [];
  let pages = 0;
  while (iterator && pages < 100) {
    const page = await streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: limit }));
    pages += 1;
    records.push(...page.Records);
    iterator = page.NextShardIterator;
    if (page.Records.length === 0) break;
  }
  return { records, iterator, pages };
}

async function iteratorOf(streams, arn, shardId, type, sequenceNumber) {
  const out = await streams.send(new GetShardIteratorCommand({
    StreamArn: arn, ShardId: shardId, ShardIteratorType: type, SequenceNumber: sequenceNumber,
  }));
  return out.ShardIterator;
}

export default async function streamsScenario(s) {
  const T = s.table("feed");
  const c = s.client;
  const streams = streamsClient(s);
  try {
    await run(s, T, c, streams);
  } finally {
    streams.destroy();
  }
}

async function run(s, T, c, streams) {
  const started = Date.now();
  const created = await s.createTable(T, {
    extra: { StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" } },
  });
  await s.requireOperation("ListStreams", () => streams.send(new ListStreamsCommand({ TableName: T })));

  const table = (await c.send(new DescribeTableCommand({ TableName: T }))).Table;
  const arn = table.LatestStreamArn;
  const label = table.LatestStreamLabel;
  s.equal(table.StreamSpecification, { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
    "DescribeTable StreamSpecification");
  s.check(typeof label === "string" && label.length > 0, "DescribeTable LatestStreamLabel", label);
  s.equal(arn, `${table.TableArn}/stream/${label}`, "DescribeTable LatestStreamArn is the table's ARN /stream/ label");
  s.equal(created.TableDescription?.LatestStreamArn, arn, "CreateTable's TableDescription has the same LatestStreamArn");

  // The writes, in order. Expected per key: the event names, and (for a few) the images.
  await c.send(new PutItemCommand({ TableName: T, Item: { pk: { S: "a" }, n: { N: "1" }, s: { S: "x" } } }));
  await c.send(new UpdateItemCommand({ TableName: T, Key: { pk: { S: "a" } }, UpdateExpression: "SET n = n + :one",
    ExpressionAttributeValues: { ":one": { N: "1" } } }));
  await c.send(new DeleteItemCommand({ TableName: T, Key: { pk: { S: "a" } } }));

  await s.doc.send(new PutCommand({ TableName: T, Item: { pk: "b", n: 10, list: [1, "two"], tags: new Set(["t"]) } }));
  await s.doc.send(new UpdateCommand({ TableName: T, Key: { pk: "b" }, UpdateExpression: "SET n = :n REMOVE tags",
    ExpressionAttributeValues: { ":n": 11 } }));
  await s.doc.send(new PutCommand({ TableName: T, Item: { pk: "b", other: true } }));
  await s.doc.send(new DeleteCommand({ TableName: T, Key: { pk: "b" } }));

  await s.doc.send(new PutCommand({ TableName: T, Item: { pk: "c", v: "same" } }));
  // Neither a failed condition nor a put of the very same item writes a record.
  await s.expectError("a conditional put on an existing item", "ConditionalCheckFailedException", undefined,
    () => s.doc.send(new PutCommand({ TableName: T, Item: { pk: "c", v: "other" },
      ConditionExpression: "attribute_not_exists(pk)" })));
  await s.doc.send(new PutCommand({ TableName: T, Item: { pk: "c", v: "same" } }));

  // An update that creates its item is an INSERT; deleting a missing item writes nothing.
  await c.send(new UpdateItemCommand({ TableName: T, Key: { pk: { S: "d" } }, UpdateExpression: "SET v = :v",
    ExpressionAttributeValues: { ":v": { S: "made" } } }));
  await c.send(new DeleteItemCommand({ TableName: T, Key: { pk: { S: "d" } } }));
  await s.doc.send(new DeleteCommand({ TableName: T, Key: { pk: "never" } }));

  const expected = {
    a: ["INSERT", "MODIFY", "REMOVE"],
    b: ["INSERT", "MODIFY", "MODIFY", "REMOVE"],
    c: ["INSERT"],
    d: ["INSERT", "REMOVE"],
  };

  // ListStreams finds the stream by its table.
  const listed = await streams.send(new ListStreamsCommand({ TableName: T }));
  s.equal(listed.Streams, [{ StreamArn: arn, TableName: T, StreamLabel: label }], "ListStreams with TableName");
  s.equal(listed.LastEvaluatedStreamArn, undefined, "ListStreams with TableName: one page");

  // DescribeStream: the stream and its shards, one a partition (a default table has 4).
  const desc = (await streams.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription;
  s.equal(desc.StreamArn, arn, "DescribeStream StreamArn");
  s.equal(desc.StreamLabel, label, "DescribeStream StreamLabel");
  s.equal(desc.StreamStatus, "ENABLED", "DescribeStream StreamStatus");
  s.equal(desc.StreamViewType, "NEW_AND_OLD_IMAGES", "DescribeStream StreamViewType");
  s.equal(desc.TableName, T, "DescribeStream TableName");
  s.equal(desc.KeySchema, [{ AttributeName: "pk", KeyType: "HASH" }], "DescribeStream KeySchema");
  s.check(desc.CreationRequestDateTime instanceof Date
    && Math.abs(desc.CreationRequestDateTime.getTime() - started) < 120000,
  "DescribeStream CreationRequestDateTime is a Date near now", desc.CreationRequestDateTime);
  s.equal(desc.LastEvaluatedShardId, undefined, "DescribeStream: every shard in one page");
  const shards = desc.Shards ?? [];
  s.equal(shards.length, 4, "DescribeStream: a shard for each of a default table's 4 partitions");
  for (const shard of shards) {
    s.check(typeof shard.ShardId === "string" && shard.ShardId.length >= 28 && shard.ShardId.length <= 65,
      "a ShardId is 28 to 65 characters", shard.ShardId);
    s.check(DIGITS.test(shard.SequenceNumberRange?.StartingSequenceNumber ?? ""),
      "a shard's StartingSequenceNumber is digits", shard.SequenceNumberRange);
    s.equal(shard.SequenceNumberRange?.EndingSequenceNumber, undefined, "an open shard has no EndingSequenceNumber");
    s.equal(shard.ParentShardId, undefined, "a new table's shard has no parent");
  }
  s.equal(new Set(shards.map((sh) => sh.ShardId)).size, shards.length, "ShardIds are distinct");

  // DescribeStream a shard a page: ExclusiveStartShardId follows LastEvaluatedShardId.
  const paged = [];
  let start;
  for (let i = 0; i < 20; i += 1) {
    const page = (await streams.send(new DescribeStreamCommand({ StreamArn: arn, Limit: 1,
      ExclusiveStartShardId: start }))).StreamDescription;
    paged.push(...page.Shards.map((sh) => sh.ShardId));
    start = page.LastEvaluatedShardId;
    if (!start) break;
  }
  s.equal(paged, shards.map((sh) => sh.ShardId), "DescribeStream with Limit 1, page by page, lists the same shards");

  // Every shard from TRIM_HORIZON, two records a page.
  const byKey = {};
  const shardOfKey = {};
  const all = [];
  const perShard = {};
  for (const shard of shards) {
    const iterator = await iteratorOf(streams, arn, shard.ShardId, "TRIM_HORIZON");
    s.check(typeof iterator === "string" && iterator.length > 0, "GetShardIterator TRIM_HORIZON", iterator);
    const { records, iterator: next } = await readShard(streams, iterator, 2);
    s.check(typeof next === "string" && next.length > 0, "an open shard's empty page still has a NextShardIterator",
      next);
    perShard[shard.ShardId] = records;
    const seqs = records.map((r) => r.dynamodb?.SequenceNumber);
    s.check(seqs.every((q) => DIGITS.test(q ?? "")), "SequenceNumber is a string of digits", seqs);
    if (seqs.every((q) => DIGITS.test(q ?? ""))) {
      s.check(seqs.every((q, i) => i === 0 || BigInt(seqs[i - 1]) < BigInt(q)),
        "sequence numbers increase within a shard", seqs);
      const from = shard.SequenceNumberRange?.StartingSequenceNumber;
      s.check(!DIGITS.test(from ?? "") || seqs.every((q) => BigInt(q) >= BigInt(from)),
        "records' sequence numbers are at or after the shard's StartingSequenceNumber", { from, seqs });
    }
    for (const r of records) {
      const key = r.dynamodb?.Keys?.pk?.S;
      (byKey[key] ??= []).push(r);
      (shardOfKey[key] ??= new Set()).add(shard.ShardId);
      all.push(r);
    }
  }

  s.equal(Object.fromEntries(Object.entries(byKey).map(([k, rs]) => [k, rs.map((r) => r.eventName)])), expected,
    "every key's eventNames, in the order written (nothing for a failed condition, an unchanged put, a missing delete)");
  s.check(Object.values(shardOfKey).every((set) => set.size === 1), "each key's records are in one shard",
    Object.fromEntries(Object.entries(shardOfKey).map(([k, v]) => [k, [...v]])));
  s.equal(new Set(all.map((r) => r.eventID)).size, all.length, "eventIDs are distinct");

  const now = Date.now();
  for (const r of all) {
    const d = r.dynamodb ?? {};
    const what = `${r.dynamodb?.Keys?.pk?.S} ${r.eventName}`;
    s.equal(r.eventSource, "aws:dynamodb", `${what}: eventSource`);
    s.check(typeof r.eventID === "string" && r.eventID.length > 0, `${what}: eventID`, r.eventID);
    s.check(typeof r.eventVersion === "string" && r.eventVersion.length > 0, `${what}: eventVersion`, r.eventVersion);
    s.equal(r.awsRegion, "us-east-1", `${what}: awsRegion`);
    s.equal(d.StreamViewType, "NEW_AND_OLD_IMAGES", `${what}: StreamViewType`);
    s.equal(Object.keys(d.Keys ?? {}), ["pk"], `${what}: Keys has the key attribute only`);
    s.check(d.ApproximateCreationDateTime instanceof Date
      && d.ApproximateCreationDateTime.getTime() >= started - 120000
      && d.ApproximateCreationDateTime.getTime() <= now + 60000,
    `${what}: ApproximateCreationDateTime is a Date near now`, d.ApproximateCreationDateTime);
    s.check(typeof d.SizeBytes === "number" && d.SizeBytes > 0, `${what}: SizeBytes`, d.SizeBytes);
    s.equal([d.OldImage !== undefined, d.NewImage !== undefined],
      { INSERT: [false, true], MODIFY: [true, true], REMOVE: [true, false] }[r.eventName] ?? "an unknown eventName",
      `${what}: which images it has`);
  }

  const images = (key) => (byKey[key] ?? []).map((r) => [r.dynamodb?.OldImage, r.dynamodb?.NewImage]);
  s.equal(images("a"), [
    [undefined, { pk: { S: "a" }, n: { N: "1" }, s: { S: "x" } }],
    [{ pk: { S: "a" }, n: { N: "1" }, s: { S: "x" } }, { pk: { S: "a" }, n: { N: "2" }, s: { S: "x" } }],
    [{ pk: { S: "a" }, n: { N: "2" }, s: { S: "x" } }, undefined],
  ], "a's images: the MODIFY has the old n 1 and the new n 2");
  const b0 = { pk: { S: "b" }, n: { N: "10" }, list: { L: [{ N: "1" }, { S: "two" }] }, tags: { SS: ["t"] } };
  const b1 = { pk: { S: "b" }, n: { N: "11" }, list: { L: [{ N: "1" }, { S: "two" }] } };
  const b2 = { pk: { S: "b" }, other: { BOOL: true } };
  s.equal(images("b"), [[undefined, b0], [b0, b1], [b1, b2], [b2, undefined]],
    "b's images (written through the DocumentClient): a put over the item is a MODIFY");
  s.equal(images("d"), [[undefined, { pk: { S: "d" }, v: { S: "made" } }], [{ pk: { S: "d" }, v: { S: "made" } },
    undefined]], "d's images: an UpdateItem that creates the item is an INSERT");

  // AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER start at and after a record.
  const [busyId, busy] = Object.entries(perShard).sort((x, y) => y[1].length - x[1].length)[0] ?? [];
  if (s.check(busy?.length >= 2, "some shard has two records or more", perShard)) {
    const ids = (rs) => rs.map((r) => r.eventID);
    const second = busy[1].dynamodb.SequenceNumber;
    const at = await readShard(streams, await iteratorOf(streams, arn, busyId, "AT_SEQUENCE_NUMBER", second), 100);
    s.equal(ids(at.records), ids(busy.slice(1)), "AT_SEQUENCE_NUMBER reads from that record on");
    const after = await readShard(streams, await iteratorOf(streams, arn, busyId, "AFTER_SEQUENCE_NUMBER", second),
      100);
    s.equal(ids(after.records), ids(busy.slice(2)), "AFTER_SEQUENCE_NUMBER reads from the record after it on");
  }

  // LATEST iterators, taken before a write, see that write (in its key's shard) and nothing older.
  const latest = [];
  for (const shard of shards) latest.push(await iteratorOf(streams, arn, shard.ShardId, "LATEST"));
  await s.doc.send(new PutCommand({ TableName: T, Item: { pk: "late", at: Date.now() } }));
  const seenLate = [];
  for (const iterator of latest) seenLate.push(...(await readShard(streams, iterator, 100)).records);
  s.equal(seenLate.map((r) => [r.dynamodb?.Keys?.pk?.S, r.eventName]), [["late", "INSERT"]],
    "LATEST iterators taken before a put read that put's record only");

  s.notes.push(`read ${all.length} records over ${shards.length} shards, ${s.checks} checks so far`);

  // Errors.
  await s.expectError("GetRecords with a ShardIterator that is not one", "ValidationException", undefined,
    () => streams.send(new GetRecordsCommand({ ShardIterator: "garbage" })));
  await s.expectError("GetShardIterator of a shard the stream does not have", "ResourceNotFoundException", undefined,
    () => streams.send(new GetShardIteratorCommand({ StreamArn: arn, ShardId: "shardId-00000000000000000000-00000000",
      ShardIteratorType: "TRIM_HORIZON" })));
  await s.expectError("DescribeStream of a stream the table never had", "ResourceNotFoundException", undefined,
    () => streams.send(new DescribeStreamCommand({ StreamArn: `${table.TableArn}/stream/2000-01-01T00:00:00.000` })));

  await c.send(new DeleteTableCommand({ TableName: T }));
}
