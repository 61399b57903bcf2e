// The official OpenAI Node SDK, unchanged, against LLMTune. Run by OpenAiNodeSdkTests (xunit), which starts the host
// and passes LLMTUNE_BASE_URL, LLMTUNE_API_KEY, LLMTUNE_LOCAL_MODEL and LLMTUNE_UPSTREAM_MODEL. Prints one JSON line
// per case ({"name", "ok", "error"}) and exits 1 when any case failed.
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.LLMTUNE_BASE_URL, apiKey: process.env.LLMTUNE_API_KEY, maxRetries: 0 });
const local = process.env.LLMTUNE_LOCAL_MODEL;
const upstream = process.env.LLMTUNE_UPSTREAM_MODEL;

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  },
};
const citySchema = {
  type: 'json_schema',
  json_schema: {
    name: 'city',
    strict: true,
    schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  },
};

/** The same with city at most 24 characters, for the local model: left alone, a toy model's string can run past max_tokens. */
const shortCity = { type: 'string', maxLength: 24 };
const localWeatherTool = {
  type: 'function',
  function: { ...weatherTool.function, parameters: { ...weatherTool.function.parameters, properties: { city: shortCity } } },
};
const localCitySchema = {
  type: 'json_schema',
  json_schema: { ...citySchema.json_schema, schema: { ...citySchema.json_schema.schema, properties: { city: shortCity } } },
};

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function plainChat(model) {
  const completion = await client.chat.completions.create({
    model,
    messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Say hello.' }],
    max_tokens: 8,
    temperature: 0,
  });
  check(completion.model === model, `model ${completion.model}`);
  check(completion.object === 'chat.completion', `object ${completion.object}`);
  check(typeof completion.choices[0].message.content === 'string', 'no content');
  check(completion.usage.total_tokens === completion.usage.prompt_tokens + completion.usage.completion_tokens, 'usage does not add up');
}

/**
 * A forced call of get_weather. Upstream: the recorded answer, one choice. Local: n: 8 with a bounded city, so every
 * choice must carry its own complete, valid call.
 */
async function toolsChat(model, { n, tool = weatherTool } = {}) {
  const completion = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Weather in Oslo?' }],
    tools: [tool],
    tool_choice: { type: 'function', function: { name: 'get_weather' } },
    max_tokens: 64,
    ...(n ? { n } : {}),
  });
  check(completion.choices.length === (n ?? 1), `${completion.choices.length} choices`);
  for (const choice of completion.choices) {
    const call = choice.message.tool_calls?.[0];
    check(call?.function?.name === 'get_weather', `tool call ${JSON.stringify(choice.message)}`);
    check(typeof call.id === 'string' && call.type === 'function', `call ${JSON.stringify(call)}`);
    const args = JSON.parse(call.function.arguments);
    check(typeof args.city === 'string' && Object.keys(args).length === 1, `arguments ${call.function.arguments}`);
    check(choice.finish_reason === 'tool_calls', `finish_reason ${choice.finish_reason}`);
  }
}

/** An answer under the city schema; local as for toolsChat (n: 8, bounded city, every choice complete and valid). */
async function jsonSchemaChat(model, { n, format = citySchema } = {}) {
  const completion = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Name a city as JSON.' }],
    response_format: format,
    max_tokens: 64,
    ...(n ? { n } : {}),
  });
  check(completion.choices.length === (n ?? 1), `${completion.choices.length} choices`);
  for (const choice of completion.choices) {
    const parsed = JSON.parse(choice.message.content);
    check(typeof parsed.city === 'string' && Object.keys(parsed).length === 1, `content ${choice.message.content}`);
    // The recording upstream answers every chat request with its one recorded tool call.
    check(n === undefined || choice.finish_reason === 'stop', `finish_reason ${choice.finish_reason}`);
  }
}

async function choicesAndLogprobs(model) {
  const completion = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Tell me a story.' }],
    max_tokens: 6,
    n: 3,
    temperature: 1,
    seed: 7,
    logprobs: true,
    top_logprobs: 2,
  });
  check(completion.choices.length === 3, `${completion.choices.length} choices`);
  const tokens = completion.choices.reduce((sum, c) => sum + c.logprobs.content.length, 0);
  check(tokens === completion.usage.completion_tokens, `${tokens} logprobs for ${completion.usage.completion_tokens} tokens`);
  check(completion.choices.every(c => c.logprobs.content.every(t => t.top_logprobs.length === 2)), 'top_logprobs');
}

async function streaming(model) {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Tell me a story.' }],
    max_tokens: 10,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  let finish = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    check(chunk.model === model, `chunk model ${chunk.model}`);
    text += chunk.choices[0]?.delta?.content ?? '';
    finish ??= chunk.choices[0]?.finish_reason ?? null;
    usage ??= chunk.usage ?? null;
  }
  check(chunks >= 2, `${chunks} chunks`);
  check(finish !== null, 'no finish_reason');
  check(usage !== null && usage.completion_tokens >= 1, `usage ${JSON.stringify(usage)}`);
  check(typeof text === 'string', 'no text');
}

async function embeddings(model) {
  // The SDK asks for base64 and decodes it unless encoding_format is given: both paths are exercised.
  const decoded = await client.embeddings.create({ model, input: ['the cat sat', 'the cat sat', 'stock markets fell'] });
  check(decoded.data.length === 3, `${decoded.data.length} embeddings`);
  const [a, b, c] = decoded.data.map(d => Array.from(d.embedding));
  check(a.length > 0 && a.every(x => typeof x === 'number'), 'not numbers');
  check(JSON.stringify(a) === JSON.stringify(b), 'the same text gave different vectors');
  if (model === local) {
    check(JSON.stringify(a) !== JSON.stringify(c), 'different texts gave the same vector');
  }
  const floats = await client.embeddings.create({ model, input: 'the cat sat', encoding_format: 'float' });
  check(floats.data[0].embedding.length === a.length, 'float and base64 widths differ');
  check(floats.data[0].embedding.every((x, i) => Math.abs(x - a[i]) < 1e-6), 'float and base64 vectors differ');
  check(decoded.usage.prompt_tokens > 0, `usage ${JSON.stringify(decoded.usage)}`);
}

const cases = [
  ['local: chat.completions.create', () => plainChat(local)],
  ['local: n, seed and logprobs', () => choicesAndLogprobs(local)],
  ['local: streaming', () => streaming(local)],
  ['local: embeddings.create', () => embeddings(local)],
  ['local: tools, named tool_choice, n: 8', () => toolsChat(local, { n: 8, tool: localWeatherTool })],
  ['local: response_format json_schema, n: 8', () => jsonSchemaChat(local, { n: 8, format: localCitySchema })],
  ['upstream: chat.completions.create', () => plainChat(upstream)],
  ['upstream: tools', () => toolsChat(upstream)],
  ['upstream: response_format json_schema', () => jsonSchemaChat(upstream)],
  ['upstream: streaming', () => streaming(upstream)],
  ['upstream: embeddings.create', () => embeddings(upstream)],
];

let failed = 0;
for (const [name, run] of cases) {
  try {
    await run();
    console.log(JSON.stringify({ name, ok: true }));
  } catch (error) {
    failed++;
    console.log(JSON.stringify({ name, ok: false, error: String(error?.stack ?? error) }));
  }
}
process.exit(failed > 0 ? 1 : 0);
