/**
 * Streams one generation from an llmrouter server, then holds a two-turn chat.
 *
 *   npm run build && node dist/examples/generate.js localhost:50051 "Say hello in five words."
 */
import { RouterClient, RouterError, v1 } from "../src/index.js";

const [address = "localhost:50051", prompt = "Say hello in five words."] = process.argv.slice(2);
const client = new RouterClient({ address });
const sampling = { maxTokens: 40, temperature: 0 };

try {
  const generation = client.generate({ prompt, sampling });
  for await (const text of generation.chunks()) {
    process.stdout.write(text);
  }
  const completed = generation.completed;
  // The contract's own name for the reason, as the other clients print it.
  const reason = `FINISH_REASON_${v1.FinishReason[completed?.finishReason ?? 0]}`;
  console.log(`\n[${reason}, ${completed?.usage?.completionTokens} tokens]`);

  const chat = client.chat({ system: "Answer in one short sentence.", sampling });
  for (const question of ["What is a lighthouse?", "Who keeps it?"]) {
    console.log(`> ${question}\n${await chat.ask(question)}`);
  }
} catch (error) {
  if (!(error instanceof RouterError)) {
    throw error;
  }
  console.error(`${error.codeName}: ${error.rawMessage} (field "${error.field}", reason "${error.reason}")`);
  process.exitCode = 1;
} finally {
  client.close();
}
