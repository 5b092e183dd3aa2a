// flagd's JavaScript provider in RPC mode, driven line by line by
// acqrel-flagd's tests (tests/node_provider.rs).
//
// Usage: node rpc_provider.mjs PORT
//
// Connects to the evaluation service on 127.0.0.1:PORT (the provider
// calls flagd.evaluation.v2.Service: the ResolveX calls and EventStream),
// waits until the provider is ready, then prints one JSON object per line
// on stdout:
//   - for each provider event: {"event":"ready"|"configuration_changed"|
//     "stale"|"error", "flagsChanged": [...], "message": ...};
//   - for each command read from stdin, one JSON object per line:
//       {"op":"resolve","type":"boolean"|"string"|"number"|"object",
//        "key":K,"default":D,"context":{...}}
//     answers {"op":"resolve","key":K,"value":..,"variant":..,"reason":..,
//     "errorCode":..,"flagMetadata":..} (the SDK's evaluation details);
//       {"op":"close"}
//     closes the SDK (and so the provider) and exits 0.
// Anything else is logged on stderr, which the tests show when they fail.

import { createInterface } from 'node:readline';
import { FlagdProvider } from '@openfeature/flagd-provider';
import { OpenFeature, ProviderEvents } from '@openfeature/server-sdk';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node rpc_provider.mjs PORT');
  process.exit(2);
}

const print = (object) => process.stdout.write(`${JSON.stringify(object)}\n`);

const provider = new FlagdProvider({
  host: '127.0.0.1',
  port,
  resolverType: 'rpc',
  cache: 'disabled',
  retryBackoffMs: 100,
  retryBackoffMaxMs: 500,
  deadlineMs: 2000,
});
// A first connection that fails (a slow machine, a daemon not up yet) is
// retried by the provider, which then emits Ready: the tests wait for
// that line either way.
await OpenFeature.setProviderAndWait(provider).catch((error) =>
  console.error(`not ready at the first try: ${error?.message ?? error}`),
);

// Registered after initialization: the SDK runs a Ready handler at once
// for a provider that already is, so "ready" is printed exactly once.
const events = {
  [ProviderEvents.Ready]: 'ready',
  [ProviderEvents.ConfigurationChanged]: 'configuration_changed',
  [ProviderEvents.Stale]: 'stale',
  [ProviderEvents.Error]: 'error',
};
for (const [type, name] of Object.entries(events)) {
  OpenFeature.addHandler(type, (details) =>
    print({
      event: name,
      flagsChanged: details?.flagsChanged ?? null,
      message: details?.message ?? null,
    }),
  );
}

const client = OpenFeature.getClient();
const resolvers = {
  boolean: (key, def, ctx) => client.getBooleanDetails(key, def, ctx),
  string: (key, def, ctx) => client.getStringDetails(key, def, ctx),
  number: (key, def, ctx) => client.getNumberDetails(key, def, ctx),
  object: (key, def, ctx) => client.getObjectDetails(key, def, ctx),
};

// Commands run one at a time, in the order they arrive.
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === '') continue;
  const command = JSON.parse(line);
  if (command.op === 'resolve') {
    const resolve = resolvers[command.type];
    if (!resolve) throw new Error(`unknown type ${command.type}`);
    const details = await resolve(command.key, command.default, command.context ?? {});
    print({
      op: 'resolve',
      key: details.flagKey,
      value: details.value ?? null,
      variant: details.variant ?? null,
      reason: details.reason ?? null,
      errorCode: details.errorCode ?? null,
      flagMetadata: details.flagMetadata ?? {},
    });
  } else if (command.op === 'close') {
    await OpenFeature.close();
    process.exit(0);
  } else {
    throw new Error(`unknown command ${line}`);
  }
}
// stdin closed without "close": the test is gone.
process.exit(1);
