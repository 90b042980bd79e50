package telemetry

import (
	"strings"

	"go.opentelemetry.io/otel/attribute"
)

// TracerName is the instrumentation scope name for zest's tracer.
const TracerName = "github.com/zest-proxy/zest"

// GenAI semantic-convention attribute keys (OpenTelemetry GenAI conventions,
// status Development, as published in semantic-conventions v1.41 and since
// maintained in the semantic-conventions-genai repository). gen_ai.provider.name
// replaced the older gen_ai.system. The Go semconv packages from v1.42 on no
// longer carry these names, hence the copies here.
const (
	GenAIOperationName            attribute.Key = "gen_ai.operation.name"               // OperationChat, OperationEmbeddings...
	GenAIProviderName             attribute.Key = "gen_ai.provider.name"                // "openai" or the upstream's own name
	GenAIRequestModel             attribute.Key = "gen_ai.request.model"                // model asked for
	GenAIResponseModel            attribute.Key = "gen_ai.response.model"               // model that answered
	GenAIResponseID               attribute.Key = "gen_ai.response.id"                  // "chatcmpl-123"
	GenAIResponseFinishReasons    attribute.Key = "gen_ai.response.finish_reasons"      // string[]
	GenAIResponseTimeToFirstChunk attribute.Key = "gen_ai.response.time_to_first_chunk" // seconds, streams
	GenAIUsageInputTokens         attribute.Key = "gen_ai.usage.input_tokens"
	GenAIUsageOutputTokens        attribute.Key = "gen_ai.usage.output_tokens"
	GenAIUsageCacheReadTokens     attribute.Key = "gen_ai.usage.cache_read.input_tokens" // provider-side cache
	GenAIRequestStream            attribute.Key = "gen_ai.request.stream"
	GenAIRequestMaxTokens         attribute.Key = "gen_ai.request.max_tokens"
	GenAIRequestTemperature       attribute.Key = "gen_ai.request.temperature"
	GenAIRequestTopP              attribute.Key = "gen_ai.request.top_p"
	GenAIRequestTopK              attribute.Key = "gen_ai.request.top_k"
	GenAIRequestSeed              attribute.Key = "gen_ai.request.seed"
	GenAIRequestChoiceCount       attribute.Key = "gen_ai.request.choice.count" // only when != 1
	GenAIRequestFrequencyPenalty  attribute.Key = "gen_ai.request.frequency_penalty"
	GenAIRequestPresencePenalty   attribute.Key = "gen_ai.request.presence_penalty"
	GenAIRequestStopSequences     attribute.Key = "gen_ai.request.stop_sequences" // string[]
	GenAIOutputType               attribute.Key = "gen_ai.output.type"            // "text", "json"
	GenAIConversationID           attribute.Key = "gen_ai.conversation.id"
	GenAIEmbeddingsDimensionCount attribute.Key = "gen_ai.embeddings.dimension.count"
	GenAIDataSourceID             attribute.Key = "gen_ai.data_source.id" // retrieval spans

	// Opt-in content attributes: prompts and answers. Set them only when the
	// operator opted in (see CaptureContent).
	GenAIInputMessages      attribute.Key = "gen_ai.input.messages"
	GenAIOutputMessages     attribute.Key = "gen_ai.output.messages"
	GenAISystemInstructions attribute.Key = "gen_ai.system_instructions"
)

// Well-known values of gen_ai.operation.name and gen_ai.provider.name.
const (
	OperationChat       = "chat"
	OperationEmbeddings = "embeddings"
	OperationRetrieval  = "retrieval"
	ProviderOpenAI      = "openai"
)

// zest's own span attribute keys. None of them carries a prompt, an answer or
// a credential: zest.cache.key is the cache entry's id (a hash).
const (
	ZestCacheStatus     attribute.Key = "zest.cache.status"     // CacheHit, CacheMiss, CacheBypass, CacheNone
	ZestCacheLayer      attribute.Key = "zest.cache.layer"      // LayerExact, LayerSemantic, LayerCoalesced
	ZestCacheSimilarity attribute.Key = "zest.cache.similarity" // float, semantic hits and candidates
	ZestCacheKey        attribute.Key = "zest.cache.key"        // entry id (hex hash), as in X-Cache-Key
	ZestCacheControl    attribute.Key = "zest.cache.control"    // effective cache_control type
	ZestCacheTTL        attribute.Key = "zest.cache.ttl"        // seconds the stored entry lives
	ZestCacheAge        attribute.Key = "zest.cache.age"        // seconds, hits
	ZestCacheStored     attribute.Key = "zest.cache.stored"     // bool: the response was stored
	ZestSemanticShadow  attribute.Key = "zest.semantic.shadow"  // bool: shadow mode, hit not served
	ZestSemanticCount   attribute.Key = "zest.semantic.candidates"
	ZestSemanticGuard   attribute.Key = "zest.semantic.guard" // guard rail that rejected the best candidate
	ZestCoalesceRole    attribute.Key = "zest.coalesce.role"  // "leader" | "follower"

	ZestRateLimitDecision attribute.Key = "zest.ratelimit.decision" // RateLimitAllow | RateLimitReject
	ZestRateLimitType     attribute.Key = "zest.ratelimit.type"     // RateLimitRequests, RateLimitTokens, RateLimitConcurrent
	ZestTokensReserved    attribute.Key = "zest.tokens.reserved"    // tokens taken from the bucket up front
	ZestTokensReconciled  attribute.Key = "zest.tokens.reconciled"  // tokens actually used, settled after the response
)

// Values of zest.ratelimit.decision.
const (
	RateLimitAllow  = "allow"
	RateLimitReject = "reject"
)

// Span names of zest's internal child spans. The upstream call and the
// embedding call are named by GenAISpanName.
const (
	SpanCacheLookup    = "zest.cache.lookup"
	SpanSemanticSearch = "zest.semantic.search"
)

// GenAISpanName returns the GenAI span name "{operation} {model}", or just
// the operation when model is empty.
func GenAISpanName(operation, model string) string {
	if model == "" {
		return operation
	}
	return operation + " " + model
}

// CaptureContentEnv is the environment variable (the name the OpenTelemetry
// GenAI instrumentations use) by which an operator opts in to prompts and
// answers on spans.
const CaptureContentEnv = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

// CaptureContent reports whether getenv opts in to recording message content
// on spans: CaptureContentEnv set to "true" (any case). Default false. A nil
// getenv means false.
func CaptureContent(getenv func(string) string) bool {
	return getenv != nil && strings.EqualFold(strings.TrimSpace(getenv(CaptureContentEnv)), "true")
}
