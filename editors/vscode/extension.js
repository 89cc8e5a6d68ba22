// The thin client: start `policy lsp` over stdio for YAML files and let it do the rest.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("policyEngine");
  const [command, ...args] = config.get("command", ["policy", "lsp"]);
  const files = config.get("files", "**/*.{yaml,yml}");
  const server = { command, args, transport: TransportKind.stdio };
  client = new LanguageClient(
    "policyEngine",
    "policy-engine",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "yaml", pattern: files }] },
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
