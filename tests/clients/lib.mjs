// Shared helpers for the scenario scripts: the client, soft checks that collect every mismatch, error
// expectations by `err.name`, and the probe that tells whether ddb implements an operation yet.
import {
  CreateTableCommand, DynamoDBClient, waitUntilTableExists, waitUntilTableNotExists,
} from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { isDeepStrictEqual, inspect } from "node:util";

// Every call is bounded: the SDK's default has no request timeout at all.
const REQUEST_TIMEOUT_MS = 15000;
const CONNECT_TIMEOUT_MS = 3000;

export class Skip extends Error {}

export class Scenario {
  constructor(endpoint, prefix) {
    this.endpoint = endpoint;
    // A per-run prefix keeps tables of several scenarios on one cluster apart.
    this.prefix = prefix;
    this.client = new DynamoDBClient({
      endpoint,
      region: "us-east-1",
      credentials: { accessKeyId: "ddb", secretAccessKey: "ddb" },
      maxAttempts: 3,
      requestHandler: { requestTimeout: REQUEST_TIMEOUT_MS, connectionTimeout: CONNECT_TIMEOUT_MS },
    });
    // Records every failed attempt the SDK retries by itself: a retried conditional write may fail on its
    // own first attempt's effect, so a report needs to show what the first attempt got.
    this.retried = [];
    this.client.middlewareStack.add((next, context) => async (args) => {
      try {
        return await next(args);
      } catch (err) {
        const status = err.$metadata?.httpStatusCode ?? err.$response?.statusCode;
        if (status !== 400 || err.$retryable || /Throttl|ProvisionedThroughput/.test(err.name)) {
          this.retried.push({ operation: context.commandName, status, error: `${err.name}: ${err.message}` });
        }
        throw err;
      }
    }, { step: "finalizeRequest", name: "ddbRecordAttempts", priority: "low" });
    this.doc = DynamoDBDocumentClient.from(this.client);
    this.checks = 0;
    this.mismatches = [];
    this.notes = [];
  }

  table(name) {
    return `${this.prefix}-${name}`;
  }

  // A soft check: the scenario goes on, so one run lists every incompatibility, not just the first.
  check(ok, what, got) {
    this.checks += 1;
    if (!ok) this.mismatches.push({ what, got: inspect(got, { depth: 6, breakLength: 160 }) });
    return ok;
  }

  equal(got, want, what) {
    return this.check(isDeepStrictEqual(got, want), `${what}: want ${inspect(want, { depth: 6 })}`, got);
  }

  // Runs `send()` expecting a failure named `name`; `message` (string or RegExp) pins the text too.
  async expectError(what, name, message, send) {
    try {
      const out = await send();
      this.check(false, `${what}: want ${name}, got success`, out);
      return undefined;
    } catch (err) {
      if (!this.check(err.name === name, `${what}: want error ${name}`, `${err.name}: ${err.message}`)) return err;
      if (message instanceof RegExp) {
        this.check(message.test(err.message), `${what}: ${name} message should match ${message}`, err.message);
      } else if (typeof message === "string") {
        this.check(err.message === message, `${what}: ${name} message should be ${JSON.stringify(message)}`,
          err.message);
      }
      this.check(err.$metadata?.httpStatusCode === 400, `${what}: HTTP status 400`, err.$metadata?.httpStatusCode);
      return err;
    }
  }

  // Throws Skip when ddb answers that it does not implement `operation` yet (another part of the project
  // is building it); any other answer, success or error, means the operation exists.
  async requireOperation(operation, send) {
    try {
      await send();
    } catch (err) {
      if (/does not support the \w+ operation yet/.test(err.message ?? "")) {
        throw new Skip(`ddb does not support ${operation} yet: ${err.message}`);
      }
    }
  }

  async createTable(name, { rangeKey = null, rangeType = "S", extra = {} } = {}) {
    const keySchema = [{ AttributeName: "pk", KeyType: "HASH" }];
    const attrs = [{ AttributeName: "pk", AttributeType: "S" }];
    if (rangeKey) {
      keySchema.push({ AttributeName: rangeKey, KeyType: "RANGE" });
      attrs.push({ AttributeName: rangeKey, AttributeType: rangeType });
    }
    const out = await this.client.send(new CreateTableCommand({
      TableName: name, KeySchema: keySchema, AttributeDefinitions: attrs, BillingMode: "PAY_PER_REQUEST", ...extra,
    }));
    await waitUntilTableExists({ client: this.client, minDelay: 1, maxDelay: 2, maxWaitTime: 60 },
      { TableName: name });
    return out;
  }

  async waitGone(name) {
    await waitUntilTableNotExists({ client: this.client, minDelay: 1, maxDelay: 2, maxWaitTime: 60 },
      { TableName: name });
  }

  result() {
    return {
      ok: this.mismatches.length === 0, checks: this.checks, mismatches: this.mismatches, notes: this.notes,
      retried: this.retried,
    };
  }
}

// Calls `send(i)` for every i in [0, count), with at most `inFlight` calls outstanding.
export async function bounded(count, inFlight, send) {
  let next = 0;
  async function worker() {
    while (next < count) {
      const i = next++;
      await send(i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, worker));
}

export function pad(n, width = 4) {
  return String(n).padStart(width, "0");
}
