using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LLMTune.Inference.Tests.Support;

namespace LLMTune.Inference.Tests;

/// <summary>
/// The official OpenAI Node SDK (tests/openai-node, installed by test.sh with <c>npm ci</c>) run unchanged with
/// <c>node</c> against a host serving the bundled model and an upstream model behind a recording OpenAI-shaped server.
/// </summary>
public sealed class OpenAiNodeSdkTests : IAsyncLifetime
{
    private const string UpstreamId = "rec/node";
    private const string UpstreamModel = "vendor-node-model";
    private static readonly string? ProjectDirectory = FindProject();
    private RecordingUpstream _upstream = null!;
    private TestHost _host = null!;

    private const string ChatAnswer = """
        {"id":"chatcmpl-n1","object":"chat.completion","created":1,"model":"vendor-node-model","system_fingerprint":"fp_n",
         "choices":[{"index":0,"message":{"role":"assistant","content":"{\"city\":\"Oslo\"}","refusal":null,
           "tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},
           "logprobs":null,"finish_reason":"tool_calls"}],
         "usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}
        """;

    private static string Chunk(string choice) =>
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"vendor-node-model\",\"choices\":[" + choice + "]}\n\n";

    public async ValueTask InitializeAsync()
    {
        _upstream = await RecordingUpstream.StartAsync();
        _upstream.Answers["/v1/chat/completions"] = ChatAnswer;
        _upstream.StreamAnswers["/v1/chat/completions"] =
            Chunk("{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}")
            + Chunk("{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}")
            + Chunk("{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":null}")
            + Chunk("{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}")
            + "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"vendor-node-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n"
            + "data: [DONE]\n\n";
        _upstream.Responders["/v1/embeddings"] = EmbeddingsAnswer;
        _host = await TestHost.StartAsync(settings: new Dictionary<string, string?>
        {
            [$"Inference:Models:{UpstreamId}:Upstream:BaseUrl"] = _upstream.BaseUrl.ToString(),
            [$"Inference:Models:{UpstreamId}:Upstream:Model"] = UpstreamModel,
            ["Inference:Models:llmtune/tiny:Threads"] = "1",
        });
    }

    /// <summary>OpenAI's answer for every input: floats, or base64 float32 as the SDK asks for by default.</summary>
    private static string EmbeddingsAnswer(byte[] body)
    {
        var request = JsonNode.Parse(body)!;
        var inputs = request["input"] is JsonArray list ? list.Count : 1;
        var base64 = request["encoding_format"]?.GetValue<string>() == "base64";
        float[] vector = [0.6f, 0.8f];
        JsonNode Embedding() => base64
            ? JsonValue.Create(Convert.ToBase64String(System.Runtime.InteropServices.MemoryMarshal.AsBytes(vector.AsSpan())))
            : new JsonArray(vector.Select(x => (JsonNode)JsonValue.Create(x)!).ToArray());
        return new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray(Enumerable.Range(0, inputs).Select(i => (JsonNode)new JsonObject { ["object"] = "embedding", ["index"] = i, ["embedding"] = Embedding() }).ToArray()),
            ["model"] = UpstreamModel,
            ["usage"] = new JsonObject { ["prompt_tokens"] = 4, ["total_tokens"] = 4 },
        }.ToJsonString();
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    [Fact]
    public async Task The_official_node_sdk_works_unchanged_against_local_and_upstream_models()
    {
        if (ProjectDirectory is null || !File.Exists(Path.Combine(ProjectDirectory, "node_modules", "openai", "package.json")))
        {
            Assert.Skip("tests/openai-node is not installed: ./test.sh installs it (npm ci --prefix tests/openai-node).");
        }

        var node = new ProcessStartInfo("node", "sdk-check.mjs")
        {
            WorkingDirectory = ProjectDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            Environment =
            {
                ["LLMTUNE_BASE_URL"] = new Uri(_host.Address, "v1").ToString(),
                ["LLMTUNE_API_KEY"] = _host.InitialKey,
                ["LLMTUNE_LOCAL_MODEL"] = "llmtune/tiny",
                ["LLMTUNE_UPSTREAM_MODEL"] = UpstreamId,
            },
        };
        using var process = Process.Start(node) ?? throw new InvalidOperationException("node did not start.");
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var errors = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        var cases = (await output).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement).ToArray();
        var report = string.Join("\n", cases.Select(c => $"{c.GetProperty("name").GetString()}: {(c.GetProperty("ok").GetBoolean() ? "ok" : c.GetProperty("error").GetString())}"));
        Assert.True(process.ExitCode == 0, $"node exited with {process.ExitCode}\n{report}\n{await errors}");
        Assert.Equal(11, cases.Length);
        Assert.All(cases, c => Assert.True(c.GetProperty("ok").GetBoolean(), report));

        // The SDK's requests reached the upstream as sent: tools and response_format included, only model replaced.
        var bodies = _upstream.Received.Where(r => r.Path == "/v1/chat/completions").Select(r => Encoding.UTF8.GetString(r.Body)).ToArray();
        Assert.Contains(bodies, b => b.Contains("\"tools\":[{\"type\":\"function\"", StringComparison.Ordinal) && b.Contains($"\"model\":\"{UpstreamModel}\"", StringComparison.Ordinal));
        Assert.Contains(bodies, b => b.Contains("\"response_format\":{\"type\":\"json_schema\"", StringComparison.Ordinal));
        Assert.DoesNotContain(bodies, b => b.Contains(UpstreamId, StringComparison.Ordinal));
    }

    private static string? FindProject()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "LLMTune.sln")))
            {
                return Path.Combine(directory.FullName, "tests", "openai-node");
            }
        }

        return null;
    }
}
