/**
 * One side of the repository's cross-language test: subscribes to a generation
 * from offset 0 and prints every item, one line each, until the subscription
 * ends:
 *
 *   item {SubscribeResponse as JSON}
 *
 *   node dist/test/crosslang/subscribe.js 127.0.0.1:50051 STREAM_ID
 */
import { toJsonString } from "@bufbuild/protobuf";
import { RouterClient, v1 } from "../../src/index.js";

const [address = "localhost:50051", streamId = ""] = process.argv.slice(2);
const client = new RouterClient({ address });
try {
  const subscription = client.subscribe();
  subscription.add({ streamId, fromOffset: 0n });
  subscription.closeSend();
  for await (const item of subscription) {
    process.stdout.write(`item ${toJsonString(v1.SubscribeResponseSchema, item)}\n`);
  }
} finally {
  client.close();
}
