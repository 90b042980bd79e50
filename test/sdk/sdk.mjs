// sdk.mjs drives a running zest with the official `openai` npm client and checks that a repeated
// request is answered from the cache with the same answer, as the SDK parses it.
//
// Environment:
//   ZEST_BASE_URL  zest's OpenAI base URL, such as http://127.0.0.1:8080/v1 (required)
//   ZEST_MOCK_URL  the mock upstream's root URL (optional); when set, each case also checks
//                  through GET /mock/stats that it cost exactly one upstream call
//
// Every case sends the same request twice, in sequence, and asserts: the first answer is a MISS
// (or, for the cross-form cases, whatever the first form was), the second is an exact HIT, and
// what the SDK made of the two answers is deeply equal. Each case uses its own prompt, because
// zest's key leaves out `stream` and `stream_options`: one stored answer serves both forms.
//
// Output: one JSON line per case ({"case", "ok", "cache", "upstream_form", ...}; "error" when it
// failed) and a last {"summary": true, ...} line. The exit status is 1 when any case failed,
// 2 when the script could not start.

import OpenAI from 'openai';

const baseURL = process.env.ZEST_BASE_URL;
if (!baseURL) {
  console.error('sdk.mjs: set ZEST_BASE_URL to zest\'s base URL, such as http://127.0.0.1:8080/v1');
  process.exit(2);
}
const mockURL = process.env.ZEST_MOCK_URL || '';

// seen collects the response headers of every HTTP call the SDK makes, so the helper streams
// (which do not expose their Response) can be checked too, and so a retry would show.
let seen = [];
const client = new OpenAI({
  baseURL,
  apiKey: 'sk-test',
  maxRetries: 0, // a retry would hide a failure and spend a second upstream call
  timeout: 20_000,
  fetch: async (url, init) => {
    const res = await fetch(url, init);
    seen.push(res.headers);
    return res;
  },
});

const model = 'gpt-4o-mini';
const tools = [{
  type: 'function',
  function: {
    name: 'search_docs',
    description: 'Search the documentation.',
    parameters: {
      type: 'object',
      properties: { query: { type: 'string' } },
      required: ['query'],
    },
  },
}];

// problems collects the failed expectations of the running case; label says which request of
// the case is running. A failed expectation does not stop the case, so both requests always
// run and every difference is reported.
let problems = [];
let label = '';

// check records msg as a problem of the running case unless cond holds; it returns cond.
function check(cond, msg) {
  if (!cond) problems.push(label ? `${label}: ${msg}` : msg);
  return Boolean(cond);
}

// diff returns the first path where a and b differ, with both values, or '' when they are
// deeply equal. Object keys whose value is undefined count as absent.
function diff(a, b, path = '$') {
  if (Object.is(a, b)) return '';
  const show = (v) => (v === undefined ? 'undefined' : JSON.stringify(v));
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null ||
      Array.isArray(a) !== Array.isArray(b)) {
    return `${path}: ${show(a)} vs ${show(b)}`;
  }
  if (Array.isArray(a)) {
    if (a.length !== b.length) return `${path}.length: ${a.length} vs ${b.length}`;
    for (let i = 0; i < a.length; i++) {
      const d = diff(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return '';
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of [...keys].sort()) {
    if (a[k] === undefined && b[k] === undefined) continue;
    const d = diff(a[k], b[k], `${path}.${k}`);
    if (d) return d;
  }
  return '';
}

// cacheHeaders reads zest's cache headers of one response.
function cacheHeaders(h) {
  return { status: h?.get('x-cache-status'), type: h?.get('x-cache-type'), key: h?.get('x-cache-key') };
}

// onlyCall returns the headers of the one HTTP call made since seen was last cleared.
function onlyCall() {
  check(seen.length === 1, `the SDK made ${seen.length} HTTP calls, want 1`);
  return seen[0];
}

// accumulate folds raw chat.completion.chunk objects into what a client assembles from them:
// the message per choice (content, refusal, role, tool calls merged by index), finish reasons,
// and the usage chunk. Chunk boundaries are left out: a replay may split text differently.
function accumulate(chunks) {
  const out = { ids: new Set(), models: new Set(), created: new Set(), fingerprints: new Set(),
    objects: new Set(), choices: [], usage: null, usageChunks: 0 };
  for (const c of chunks) {
    out.ids.add(c.id);
    out.models.add(c.model);
    out.created.add(c.created);
    if (c.system_fingerprint != null) out.fingerprints.add(c.system_fingerprint);
    out.objects.add(c.object);
    if (c.usage != null) {
      out.usage = c.usage;
      out.usageChunks++;
    }
    for (const ch of c.choices ?? []) {
      const slot = (out.choices[ch.index] ??= { role: null, content: '', refusal: null, tool_calls: [], finish_reason: null });
      const d = ch.delta ?? {};
      if (d.role) slot.role = d.role;
      if (d.content) slot.content += d.content;
      if (d.refusal) slot.refusal = (slot.refusal ?? '') + d.refusal;
      for (const tc of d.tool_calls ?? []) {
        const t = (slot.tool_calls[tc.index] ??= { id: null, type: null, name: '', arguments: '' });
        if (tc.id) t.id = tc.id;
        if (tc.type) t.type = tc.type;
        if (tc.function?.name) t.name += tc.function.name;
        if (tc.function?.arguments) t.arguments += tc.function.arguments;
      }
      if (ch.finish_reason != null) slot.finish_reason = ch.finish_reason;
    }
  }
  for (const k of ['ids', 'models', 'created', 'fingerprints', 'objects']) out[k] = [...out[k]].sort();
  return out;
}

// Each request function sends one request and returns { cache, form, result }: zest's cache
// headers, the form the client asked for ('chat' or 'chat_stream': what a miss costs upstream),
// and what the SDK parsed, to compare between the two runs.

async function plain(params) {
  seen = [];
  const { data, response } = await client.chat.completions.create({ ...params }).withResponse();
  onlyCall();
  check(data.object === 'chat.completion', `object is ${JSON.stringify(data.object)}, want "chat.completion"`);
  return { cache: cacheHeaders(response.headers), form: 'chat', result: data };
}

async function rawStream(params, wantUsage) {
  seen = [];
  const { data: stream, response } = await client.chat.completions
    .create({ ...params, stream: true }).withResponse();
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  onlyCall();
  const acc = accumulate(chunks);
  check(chunks.length > 1, `stream had ${chunks.length} chunks`);
  check(acc.objects.length === 1 && acc.objects[0] === 'chat.completion.chunk',
    `chunk objects ${JSON.stringify(acc.objects)}, want only "chat.completion.chunk"`);
  check(acc.ids.length === 1, `chunks carry ${acc.ids.length} ids: ${JSON.stringify(acc.ids)}`);
  if (wantUsage) {
    check(acc.usageChunks === 1, `saw ${acc.usageChunks} usage chunks with include_usage, want 1`);
    const last = chunks[chunks.length - 1];
    check(last.usage != null && last.choices.length === 0,
      'the usage chunk is not the last chunk with empty choices');
  } else {
    check(acc.usageChunks === 0, `saw ${acc.usageChunks} usage chunks without include_usage, want 0`);
    // OpenAI sends no usage member at all then (it is null on each chunk only with include_usage).
    const n = chunks.filter((c) => 'usage' in c).length;
    check(n === 0, `${n} of ${chunks.length} chunks carry a "usage" member (null) without include_usage; OpenAI sends none`);
  }
  acc.choices.forEach((ch, i) => check(ch?.finish_reason, `choice ${i} ended without finish_reason`));
  return { cache: cacheHeaders(response.headers), form: 'chat_stream', result: acc };
}

async function helperStream(params, wantUsage) {
  seen = [];
  const stream = client.chat.completions.stream({ ...params });
  const deltas = [];
  const contentDone = [];
  const argsDone = [];
  stream.on('content.delta', (e) => deltas.push(e.delta));
  stream.on('content.done', (e) => contentDone.push(e.content));
  stream.on('tool_calls.function.arguments.done', (e) =>
    argsDone.push({ name: e.name, index: e.index, arguments: e.arguments, parsed: e.parsed_arguments }));
  const final = await stream.finalChatCompletion();
  const h = onlyCall();
  const msg = final.choices[0]?.message;
  check(msg, 'finalChatCompletion has no choices[0].message');
  check(deltas.join('') === (msg?.content ?? ''),
    'the content.delta events do not add up to the final content');
  if (wantUsage) check(final.usage != null, 'finalChatCompletion has no usage with include_usage');
  else check(final.usage == null, `finalChatCompletion has usage ${JSON.stringify(final.usage)} without include_usage`);
  return { cache: cacheHeaders(h), form: 'chat_stream', result: { final, contentDone, argsDone } };
}

// twice runs a request twice and compares what the SDK parsed, with compare (default: deep
// equality). first and second are request functions. An exception (a network or API error)
// ends the case.
async function twice(name, first, second, { compare = diff, wantTool = false } = {}) {
  const line = { case: name, ok: false };
  problems = [];
  try {
    const before = mockURL ? await mockStats() : null;
    label = 'first request';
    const a = await first();
    label = 'second request';
    const b = await second();
    label = '';
    line.cache = [a.cache.status, b.cache.status];
    line.cache_type = b.cache.type;
    line.upstream_form = a.form;
    check(a.cache.status === 'MISS', `first answer X-Cache-Status ${a.cache.status}, want MISS`);
    check(b.cache.status === 'HIT', `second answer X-Cache-Status ${b.cache.status}, want HIT`);
    check(b.cache.type === 'exact', `second answer X-Cache-Type ${b.cache.type}, want exact`);
    check(a.cache.key && a.cache.key === b.cache.key,
      `X-Cache-Key differs: ${a.cache.key} vs ${b.cache.key}`);
    const got = comparable(a.result).choices[0];
    if (wantTool) {
      const tc = got?.tool_calls ?? [];
      check(tc.length === 1 && tc[0].name === 'search_docs' && isJSON(tc[0].arguments) &&
        got.finish_reason === 'tool_calls',
      `first answer is not one search_docs tool call: ${JSON.stringify(got)}`);
    } else {
      check(got?.content && got.finish_reason === 'stop', `first answer has no text: ${JSON.stringify(got)}`);
    }
    const d = compare(a.result, b.result);
    check(!d, `second answer differs from the first as the SDK parsed it: ${d}`);
    if (before) {
      const after = await mockStats();
      const calls = (after.chat - before.chat) + (after.chat_stream - before.chat_stream);
      line.upstream_calls = calls;
      check(calls === 1, `the upstream answered ${calls} chat calls for this case, want 1`);
      check(after[a.form] - before[a.form] === calls, `not every upstream call was a ${a.form} call`);
    }
  } catch (err) {
    problems.push(`${label || 'case'}: ${err?.name ?? 'Error'}: ${err?.message ?? err}`);
  }
  label = '';
  line.ok = problems.length === 0;
  if (!line.ok) line.error = problems.join('; ');
  console.log(JSON.stringify(line));
  return line.ok;
}

// comparable reduces a plain completion, an accumulated raw stream or a helper result to the
// fields every form carries, so a JSON answer and its streamed replay can be compared.
function comparable(r) {
  if (r.final) r = r.final;
  if (Array.isArray(r.ids)) {
    return {
      id: r.ids[0], model: r.models[0], created: r.created[0],
      choices: r.choices.map((c) => ({
        content: c.content || null, finish_reason: c.finish_reason,
        tool_calls: c.tool_calls.map((t) => ({ id: t.id, name: t.name, arguments: t.arguments })),
      })),
      usage: r.usage,
    };
  }
  return {
    id: r.id, model: r.model, created: r.created,
    choices: r.choices.map((c) => ({
      content: c.message.content || null, finish_reason: c.finish_reason,
      tool_calls: (c.message.tool_calls ?? []).map((t) => ({ id: t.id, name: t.function.name, arguments: t.function.arguments })),
    })),
    usage: r.usage ?? null,
  };
}

function isJSON(s) {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

async function mockStats() {
  const res = await fetch(new URL('/mock/stats', mockURL));
  if (!res.ok) throw new Error(`GET /mock/stats: ${res.status}`);
  return res.json();
}

function ask(text, extra = {}) {
  return {
    model,
    messages: [
      { role: 'system', content: 'You are a terse assistant.' },
      { role: 'user', content: text },
    ],
    ...extra,
  };
}

const toolAsk = (text) => ask(text, { tools, tool_choice: 'auto' });

const cases = [
  ['non_stream', ask('sdk case 1: what does a cache do'), (p) => () => plain(p)],
  ['stream', ask('sdk case 2: what does a proxy do'), (p) => () => rawStream(p, false)],
  ['stream_helper', ask('sdk case 2b: what does a header do'), (p) => () => helperStream(p, false)],
  ['stream_include_usage', ask('sdk case 3: what is a token', { stream_options: { include_usage: true } }),
    (p) => () => rawStream(p, true)],
  ['stream_include_usage_helper', ask('sdk case 3b: what is a budget', { stream_options: { include_usage: true } }),
    (p) => () => helperStream(p, true)],
  ['tool_call', toolAsk('sdk case 4: find the page about rate limits'), (p) => () => plain(p)],
  ['tool_call_stream', toolAsk('sdk case 4b: find the page about streaming'), (p) => () => rawStream(p, false)],
  ['tool_call_stream_helper', toolAsk('sdk case 4c: find the page about semantic caching'),
    (p) => () => helperStream(p, false)],
];

let failed = 0;
let total = 0;
for (const [name, params, run] of cases) {
  total++;
  if (!(await twice(name, run(params), run(params), { wantTool: Boolean(params.tools) }))) failed++;
}

// Cross-form: one stored answer serves both forms (DESIGN.md §4). The first request stores it
// in one form, the second reads it in the other (stream and stream_options are not part of the
// key); the fields both forms carry must agree. A stream that did not ask for include_usage has
// no usage to compare, but the JSON answer must still carry it.
const crossCases = [
  ['cross_json_then_stream_usage', ask('sdk cross 1: stored as JSON, read as a stream'),
    (p) => plain(p), (p) => rawStream({ ...p, stream_options: { include_usage: true } }, true), false],
  ['cross_stream_then_json', ask('sdk cross 2: stored as a stream, read as JSON'),
    (p) => rawStream(p, false), (p) => plain(p), true],
  ['cross_tool_json_then_helper', toolAsk('sdk cross 3: find the page about tool calls'),
    (p) => plain(p), (p) => helperStream(p, false), true],
];
for (const [name, params, first, second, ignoreUsage] of crossCases) {
  total++;
  const ok = await twice(name, () => first(params), () => second(params), {
    wantTool: Boolean(params.tools),
    compare: (a, b) => {
      const [ca, cb] = [comparable(a), comparable(b)];
      if (ignoreUsage) {
        const json = [a, b].find((r) => r.object === 'chat.completion');
        check(json?.usage?.total_tokens > 0, 'the JSON answer has no usage');
        ca.usage = cb.usage = null;
      }
      return diff(ca, cb);
    },
  });
  if (!ok) failed++;
}

console.log(JSON.stringify({ summary: true, cases: total, failed }));
process.exit(failed ? 1 : 0);
