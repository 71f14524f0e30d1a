#!/usr/bin/env node
// Exit 0 if a Firestore gRPC emulator answers on HOST:PORT, 1 otherwise.
// Usage: node healthcheck.js PORT [HOST]
// Sends a real RPC (google.firestore.v1.Firestore/BeginTransaction with an empty
// request, which @firestore-emulator/server answers with a dummy transaction id).
"use strict";

const grpc = require("@grpc/grpc-js");

const port = process.argv[2];
const host = process.argv[3] || "127.0.0.1";
if (!port) {
  console.error("usage: node healthcheck.js PORT [HOST]");
  process.exit(2);
}

const client = new grpc.Client(`${host}:${port}`, grpc.credentials.createInsecure());
const deadline = new Date(Date.now() + 2000);
client.makeUnaryRequest(
  "/google.firestore.v1.Firestore/BeginTransaction",
  (buf) => buf,
  (buf) => buf,
  Buffer.alloc(0),
  new grpc.Metadata(),
  { deadline },
  (err) => {
    client.close();
    if (err) {
      console.error(`not ready: ${err.code} ${err.details || err.message}`);
      process.exit(1);
    }
    process.exit(0);
  },
);
