#!/usr/bin/env node
// Tiny launcher for the @firestore-emulator/server gRPC Firestore emulator.
//
// Usage: node server.js [PORT] [HOST]
//   PORT defaults to $FIRESTORE_EMULATOR_PORT or 8080; HOST defaults to 127.0.0.1.
//
// Differences from `new FirestoreServer().start(port)`:
//   * binds to 127.0.0.1 only (the package's start() binds 0.0.0.0);
//   * RPCs the package does not implement (GetDocument, ListDocuments,
//     UpdateDocument, DeleteDocument, CreateDocument, BatchWrite, Write,
//     PartitionQuery, ListCollectionIds) answer with gRPC status
//     UNIMPLEMENTED instead of a console-spamming thrown error (UNKNOWN);
//   * SIGUSR2 clears all emulator state (reset between test sessions);
//   * SIGTERM/SIGINT shut the server down cleanly.
"use strict";

const grpc = require("@grpc/grpc-js");
const { FirestoreServer } = require("@firestore-emulator/server");

const port = Number(process.argv[2] || process.env.FIRESTORE_EMULATOR_PORT || 8080);
const host = process.argv[3] || "127.0.0.1";

const UNIMPLEMENTED_UNARY = [
  "GetDocument",
  "ListDocuments",
  "UpdateDocument",
  "DeleteDocument",
  "CreateDocument",
  "BatchWrite",
  "PartitionQuery",
  "ListCollectionIds",
];

const fs = new FirestoreServer();
// `server` and the service impl are TS-private, but plain properties at runtime.
const grpcServer = fs.server;
const impl = grpcServer.handlers; // Map<path, handler> in grpc-js

function unimplemented(name) {
  return {
    code: grpc.status.UNIMPLEMENTED,
    details: `@firestore-emulator/server does not implement ${name}`,
  };
}

for (const [path, handler] of impl) {
  const name = path.split("/").pop();
  if (UNIMPLEMENTED_UNARY.includes(name)) {
    handler.func = (_call, callback) => callback(unimplemented(name));
  } else if (name === "Write") {
    handler.func = (call) => {
      call.emit("error", unimplemented(name));
    };
  }
}

process.on("uncaughtException", (err) => {
  console.error("[firestore-emulator] uncaught exception (kept running):", err);
});
process.on("unhandledRejection", (err) => {
  console.error("[firestore-emulator] unhandled rejection (kept running):", err);
});

grpcServer.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, boundPort) => {
  if (err) {
    console.error(`[firestore-emulator] failed to bind ${host}:${port}:`, err.message);
    process.exit(1);
  }
  console.log(`[firestore-emulator] listening on ${host}:${boundPort} (pid ${process.pid})`);
});

process.on("SIGUSR2", () => {
  fs.state.clear();
  console.log("[firestore-emulator] state cleared (SIGUSR2)");
});

function shutdown(sig) {
  console.log(`[firestore-emulator] ${sig}: shutting down`);
  grpcServer.forceShutdown();
  process.exit(0);
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
