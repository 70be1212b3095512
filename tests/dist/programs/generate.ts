/**
 * Streams one greedy generation through the installed @llmrouter/client.
 *
 * Usage: `node generate.js ADDRESS PROMPT MAX_TOKENS`. Prints a line per event:
 * `chunk` and the text as JSON, `completed` with the finish reason's number and
 * the completion tokens, or the name of any other kind.
 */
import { RouterClient, RouterError } from "@llmrouter/client";

const [address, prompt, maxTokens] = process.argv.slice(2);
const client = new RouterClient({ address });
try {
  const sampling = { maxTokens: Number(maxTokens), temperature: 0 };
  for await (const { kind } of client.generate({ prompt, sampling })) {
    if (kind.case === "chunk") {
      console.log(`chunk ${JSON.stringify(kind.value.text)}`);
    } else if (kind.case === "completed") {
      console.log(`completed ${kind.value.finishReason} ${kind.value.usage?.completionTokens ?? 0}`);
    } else {
      console.log(kind.case);
    }
  }
} catch (error) {
  if (error instanceof RouterError) {
    console.error(`${error.codeName}: ${error.rawMessage}`);
    process.exitCode = 1;
  } else {
    throw error;
  }
} finally {
  client.close();
}
