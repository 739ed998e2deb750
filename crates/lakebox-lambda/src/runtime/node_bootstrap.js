// Lakebox's Node.js runtime client: the loop AWS's runtime interface client runs inside a
// Lambda execution environment, speaking the Lambda Runtime API at AWS_LAMBDA_RUNTIME_API.
// Started by Lakebox with the function's code in LAMBDA_TASK_ROOT and its handler in _HANDLER.
"use strict";
const http = require("http");
const path = require("path");
const fs = require("fs");
const url = require("url");
const { Writable } = require("stream");

const [HOST, PORT] = process.env.AWS_LAMBDA_RUNTIME_API.split(":");
const BASE = "/2018-06-01/runtime";
// One kept-alive connection: a warm invocation costs no connects.
const AGENT = new http.Agent({ keepAlive: true, maxSockets: 1 });

function call(method, p, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: HOST, port: PORT, method, path: BASE + p, headers: headers || {}, agent: AGENT },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// Response streaming, as AWS's Node.js runtimes offer it: `awslambda.streamifyResponse(handler)`
// gives the handler a writable stream whose bytes go to the Runtime API as a chunked, streamed
// response; `awslambda.HttpResponseStream.from(stream, { statusCode, headers, cookies })` starts
// it with the HTTP prelude function URLs read.
const STREAMING = Symbol.for("aws.lambda.runtime.handler.streaming");
const HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response";
globalThis.awslambda = {
  streamifyResponse(handler) {
    handler[STREAMING] = "response";
    return handler;
  },
  HttpResponseStream: {
    from(stream, prelude) {
      stream.setContentType(HTTP_INTEGRATION);
      stream.write(JSON.stringify(prelude || {}));
      stream.write(Buffer.alloc(8));
      return stream;
    },
  },
};

// The stream a streaming handler writes: its first write opens the response request.
function responseStream(id) {
  let contentType = "application/octet-stream";
  let req = null;
  let settle;
  const sent = new Promise((resolve) => (settle = resolve));
  const open = () => {
    if (req) return req;
    req = http.request({
      host: HOST, port: PORT, method: "POST", path: `${BASE}/invocation/${id}/response`, agent: AGENT,
      headers: {
        "Content-Type": contentType,
        "Lambda-Runtime-Function-Response-Mode": "streaming",
        "Transfer-Encoding": "chunked",
        Trailer: "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
      },
    }, (res) => { res.resume(); res.on("end", settle); });
    req.on("error", settle);
    return req;
  };
  const stream = new Writable({
    write(chunk, encoding, callback) { open().write(chunk, encoding, callback); },
    final(callback) { open().end(); callback(); },
  });
  stream.setContentType = (type) => { contentType = type; };
  stream.opened = () => req !== null;
  // An error after the response began: reported in its trailers.
  stream.fail = (doc) => {
    const r = open();
    r.addTrailers({
      "Lambda-Runtime-Function-Error-Type": doc.errorType,
      "Lambda-Runtime-Function-Error-Body": Buffer.from(JSON.stringify(doc)).toString("base64"),
    });
    r.end();
  };
  stream.sent = sent;
  return stream;
}

async function runStreaming(handler, event, ctx, id) {
  const stream = responseStream(id);
  try {
    await handler(event, stream, ctx);
    if (!stream.writableEnded) stream.end();
    await new Promise((resolve) => (stream.writableFinished ? resolve() : stream.on("finish", resolve)));
  } catch (e) {
    const doc = errorDoc(e, id);
    console.error(`${new Date().toISOString()}\t${id}\tERROR\tInvoke Error \t${JSON.stringify(doc)}`);
    await markEnd(id);
    if (stream.opened()) {
      stream.fail(doc);
      await stream.sent;
    } else {
      await postError(`/invocation/${id}/error`, doc, "Unhandled");
    }
    return;
  }
  await markEnd(id);
  await stream.sent;
}

function errorDoc(err, requestId) {
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    errorType: e.name || "Error",
    errorMessage: e.message,
    trace: (e.stack || "").split("\n"),
  };
}

function markEnd(requestId) {
  // Tells Lakebox the invocation's output is all in the pipes (kept out of the log).
  return new Promise((resolve) => {
    process.stdout.write("\x1elakebox:end " + requestId + "\n", () => {
      process.stderr.write("\x1elakebox:end " + requestId + "\n", () => resolve());
    });
  });
}

async function postError(p, doc, type) {
  await call("POST", p, JSON.stringify(doc), { "Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": type });
}

async function loadHandler() {
  const spec = process.env._HANDLER || "";
  const dot = spec.lastIndexOf(".");
  if (dot <= 0) {
    throw Object.assign(new Error(`Bad handler ${spec}`), { name: "Runtime.MalformedHandlerName" });
  }
  const modulePath = spec.slice(0, dot);
  const name = spec.slice(dot + 1);
  const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
  const base = path.resolve(root, modulePath);
  let mod;
  const candidates = [".js", ".mjs", ".cjs"].map((ext) => base + ext).filter((f) => fs.existsSync(f));
  if (candidates.length === 0) {
    throw Object.assign(new Error(`Cannot find module '${modulePath}'`), { name: "Runtime.ImportModuleError" });
  }
  try {
    const file = candidates[0];
    mod = file.endsWith(".mjs") ? await import(url.pathToFileURL(file).href) : require(file);
  } catch (e) {
    throw Object.assign(new Error(`${e.name}: ${e.message}`), { name: e instanceof SyntaxError ? "Runtime.UserCodeSyntaxError" : "Runtime.ImportModuleError" });
  }
  const handler = mod[name] !== undefined ? mod[name] : mod.default && mod.default[name];
  if (typeof handler !== "function") {
    throw Object.assign(new Error(`${modulePath}.${name} is undefined or not exported`), { name: "Runtime.HandlerNotFound" });
  }
  return handler;
}

function context(headers) {
  const deadline = Number(headers["lambda-runtime-deadline-ms"] || 0);
  const cc = headers["lambda-runtime-client-context"];
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: headers["lambda-runtime-aws-request-id"],
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: cc ? JSON.parse(cc) : undefined,
    identity: undefined,
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
  };
}

function run(handler, event, ctx) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (err, result) => {
      if (settled) return;
      settled = true;
      if (err !== null && err !== undefined) reject(err);
      else resolve(result);
    };
    try {
      const r = handler(event, ctx, done);
      if (r && typeof r.then === "function") r.then((v) => done(null, v), (e) => done(e));
      else if (handler.length < 3) done(null, r);
    } catch (e) {
      done(e);
    }
  });
}

async function main() {
  let handler;
  try {
    handler = await loadHandler();
  } catch (e) {
    const doc = errorDoc(e);
    console.error(`ERROR\t${doc.errorType}: ${doc.errorMessage}`);
    await postError("/init/error", doc, doc.errorType);
    process.exit(1);
  }
  for (;;) {
    const next = await call("GET", "/invocation/next");
    if (next.status !== 200) continue;
    const id = next.headers["lambda-runtime-aws-request-id"];
    if (next.headers["lambda-runtime-trace-id"]) process.env._X_AMZN_TRACE_ID = next.headers["lambda-runtime-trace-id"];
    let result;
    try {
      const event = next.body.length ? JSON.parse(next.body.toString("utf8")) : null;
      if (handler[STREAMING]) {
        await runStreaming(handler, event, context(next.headers), id);
        continue;
      }
      result = await run(handler, event, context(next.headers));
    } catch (e) {
      const doc = errorDoc(e, id);
      console.error(`${new Date().toISOString()}\t${id}\tERROR\tInvoke Error \t${JSON.stringify(doc)}`);
      await markEnd(id);
      await postError(`/invocation/${id}/error`, doc, "Unhandled");
      continue;
    }
    await markEnd(id);
    const body = result === undefined ? "null" : JSON.stringify(result);
    await call("POST", `/invocation/${id}/response`, body, { "Content-Type": "application/json" });
  }
}

main();
