// PartiQL through the JS SDK v3: ExecuteStatement with the client and the DocumentClient (native values as
// Parameters), NextToken paging, DuplicateItemException, BatchExecuteStatement with a failing statement.
import {
  BatchExecuteStatementCommand, DeleteTableCommand, ExecuteStatementCommand,
} from "@aws-sdk/client-dynamodb";
import { ExecuteStatementCommand as DocExecuteStatementCommand } from "@aws-sdk/lib-dynamodb";
import { bounded } from "../lib.mjs";

export default async function partiql(s) {
  const T = s.table("pql");
  const c = s.client;
  await s.createTable(T, { rangeKey: "sk", rangeType: "N" });
  await s.requireOperation("ExecuteStatement", () => c.send(new ExecuteStatementCommand({
    Statement: `SELECT * FROM "${T}" WHERE pk = 'probe'`,
  })));
  await bounded(20, 10, (i) => s.doc.send(new DocExecuteStatementCommand({
    Statement: `INSERT INTO "${T}" VALUE {'pk': ?, 'sk': ?, 'tags': ?, 'meta': ?}`,
    Parameters: ["p", i, new Set(["a", `t${i}`]), { n: i, even: i % 2 === 0 }],
  })));

  const seen = [];
  let NextToken;
  for (let pages = 0; pages < 50; pages++) {
    const out = await s.doc.send(new DocExecuteStatementCommand({
      Statement: `SELECT sk, meta.even FROM "${T}" WHERE pk = ? AND sk >= ?`, Parameters: ["p", 5], Limit: 4, NextToken,
    }));
    seen.push(...out.Items);
    NextToken = out.NextToken;
    if (!NextToken) break;
  }
  s.equal(seen.map((it) => it.sk), Array.from({ length: 15 }, (_, k) => k + 5), "SELECT paged by NextToken, in order");
  s.equal(seen[0], { sk: 5, meta: { even: false } }, "SELECT projects a nested path");

  await s.expectError("INSERT of a taken key", "DuplicateItemException", "Duplicate primary key exists in table",
    () => c.send(new ExecuteStatementCommand({ Statement: `INSERT INTO "${T}" VALUE {'pk': 'p', 'sk': 1}` })));
  await s.expectError("a statement that is not PartiQL", "ValidationException",
    "Statement wasn't well formed, can't be processed: Expected data manipulation",
    () => c.send(new ExecuteStatementCommand({ Statement: `DROP TABLE "${T}"` })));

  const batch = await c.send(new BatchExecuteStatementCommand({ Statements: [
    { Statement: `UPDATE "${T}" SET meta.n = meta.n + 100 WHERE pk = 'p' AND sk = 3` },
    { Statement: `DELETE FROM "${T}" WHERE pk = 'p' AND sk = 4 AND meta.n = 99` },
  ] }));
  s.equal(batch.Responses.map((r) => r.Error?.Code ?? "ok"), ["ok", "ConditionalCheckFailed"],
    "BatchExecuteStatement answers each statement on its own");
  const three = await s.doc.send(new DocExecuteStatementCommand({
    Statement: `SELECT meta FROM "${T}" WHERE pk = 'p' AND sk = 3`, ConsistentRead: true,
  }));
  s.equal(three.Items, [{ meta: { n: 103, even: false } }], "UPDATE through BatchExecuteStatement applied");

  await c.send(new DeleteTableCommand({ TableName: T }));
}
