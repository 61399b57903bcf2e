using System.Net;
using System.Text;
using LLMTune.Finetune.Features.Datasets;
using LLMTune.Finetune.Tests.Support;
using LLMTune.Platform.Http;

namespace LLMTune.Finetune.Tests;

/// <summary>JSONL validation, dataset references, address rules for remote datasets, tokenization with loss masks.</summary>
public sealed class DatasetTests
{
    private static IReadOnlyList<TextExample> Parse(string text) => DatasetParser.Parse(new MemoryStream(Encoding.UTF8.GetBytes(text)));

    [Fact]
    public void Chat_and_prompt_completion_lines_parse_and_blank_lines_are_skipped()
    {
        var examples = Parse("""
            {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}

            {"prompt": "2+2=", "completion": "4"}
            """);
        Assert.Equal(2, examples.Count);
        Assert.Equal(3, examples[0].Messages!.Count);
        Assert.Equal(3, examples[1].Line);
        Assert.Equal("4", examples[1].Completion);
    }

    [Theory]
    [InlineData("{\"prompt\": \"x\", \"completion\": }", "line 2: not valid JSON")]
    [InlineData("[1, 2]", "line 2: expected a JSON object")]
    [InlineData("{\"text\": \"x\"}", "line 2: expected \"messages\" or \"prompt\" and \"completion\"")]
    [InlineData("{\"prompt\": \"x\", \"completion\": \"\"}", "line 2: \"completion\" must be a non-empty string")]
    [InlineData("{\"prompt\": 3, \"completion\": \"y\"}", "line 2: \"prompt\" must be a string")]
    [InlineData("{\"messages\": []}", "line 2: \"messages\" must be a non-empty array")]
    [InlineData("{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}", "line 2: messages[0].role must be one of system, user, assistant")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": 1}]}", "line 2: messages[0].content must be a string")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", "line 2: no non-empty assistant message to learn from")]
    public void A_bad_line_is_reported_by_number_with_its_problem(string badLine, string expected)
    {
        var error = Assert.Throws<DatasetException>(() => Parse("{\"prompt\": \"a\", \"completion\": \"b\"}\n" + badLine + "\n"));
        Assert.Equal(DatasetException.ValidationFailed, error.Code);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Empty_and_non_utf8_datasets_fail_validation()
    {
        Assert.Equal(DatasetException.ValidationFailed, Assert.Throws<DatasetException>(() => Parse("\n  \n")).Code);
        var latin1 = new MemoryStream([.. "{\"prompt\": \"caf"u8, 0xE9, .. "\", \"completion\": \"x\"}"u8]);
        Assert.Contains("UTF-8", Assert.Throws<DatasetException>(() => DatasetParser.Parse(latin1)).Message);
    }

    [Fact]
    public void Many_bad_lines_are_summarised()
    {
        var error = Assert.Throws<DatasetException>(() => Parse(string.Join('\n', Enumerable.Repeat("nope", 9))));
        Assert.Contains("line 1:", error.Message);
        Assert.Contains("line 5:", error.Message);
        Assert.DoesNotContain("line 6:", error.Message);
        Assert.Contains("and 4 more lines", error.Message);
    }

    [Theory]
    [InlineData("file_abc123", DatasetKind.UploadedFile, "file_abc123")]
    [InlineData("llmtune://files/file_abc123", DatasetKind.UploadedFile, "file_abc123")]
    [InlineData("https://data.example.com/train.jsonl", DatasetKind.Https, "https://data.example.com/train.jsonl")]
    [InlineData("s3://bucket/path/train.jsonl", DatasetKind.S3, "s3://bucket/path/train.jsonl")]
    [InlineData("gs://bucket/train.jsonl", DatasetKind.Gcs, "gs://bucket/train.jsonl")]
    public void Dataset_references_parse(string text, DatasetKind kind, string location)
    {
        var reference = DatasetReference.TryParse(text, out var problem);
        Assert.Null(problem);
        Assert.Equal(kind, reference!.Kind);
        Assert.Equal(location, reference.Location);
    }

    [Theory]
    [InlineData("http://data.example.com/train.jsonl")]
    [InlineData("s3://bucket")]
    [InlineData("ftp://example.com/x")]
    [InlineData("https://user:pass@example.com/x")]
    [InlineData("train.jsonl")]
    [InlineData("")]
    public void Other_references_are_refused_with_a_reason(string text)
    {
        Assert.Null(DatasetReference.TryParse(text, out var problem));
        Assert.False(string.IsNullOrEmpty(problem));
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("10.1.2.3")]
    [InlineData("172.20.0.5")]
    [InlineData("192.168.1.1")]
    [InlineData("169.254.169.254")]
    [InlineData("100.64.0.1")]
    [InlineData("0.0.0.0")]
    [InlineData("::1")]
    [InlineData("fe80::1")]
    [InlineData("fd00:ec2::254")]
    [InlineData("::ffff:10.0.0.1")]
    [InlineData("168.63.129.16")]
    public void Internal_addresses_are_refused_unless_allow_listed(string address)
    {
        var ip = IPAddress.Parse(address);
        Assert.False(new HostAllowList([]).Allows("data.example.com", ip));
        Assert.True(new HostAllowList(["data.example.com"]).Allows("data.example.com", ip));
        Assert.True(new HostAllowList([address]).Allows("data.example.com", ip));
    }

    [Fact]
    public void Public_addresses_pass_and_ranges_can_be_allow_listed()
    {
        Assert.True(new HostAllowList([]).Allows("example.com", IPAddress.Parse("93.184.216.34")));
        Assert.True(new HostAllowList([]).Allows("example.com", IPAddress.Parse("2606:2800:220:1::1")));
        Assert.True(new HostAllowList(["10.0.0.0/8"]).Allows("minio", IPAddress.Parse("10.9.8.7")));
        Assert.False(new HostAllowList(["10.0.0.0/8"]).Allows("minio", IPAddress.Parse("192.168.0.1")));
        Assert.False(HostAllowList.IsValidEntry("not a host!"));
    }

    [Fact]
    public void Chat_examples_train_only_the_assistant_turns_with_the_models_own_template_and_tokens()
    {
        using var tokenizer = new DatasetTokenizer();
        var examples = Parse("""
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Ciao"}]}
            {"prompt": "Q", "completion": "A"}
            """);
        var tokenized = tokenizer.Tokenize(FinetuneTestModels.SmallPath, examples, 128);
        Assert.Equal(2, tokenized.Count);

        var chat = tokenized[0];
        var trained = Enumerable.Range(0, chat.Tokens.Count).Where(chat.IsTrained).ToList();
        // Byte-level vocabulary: "Hello" + <|im_end|> and "Ciao" + <|im_end|> are the only trained tokens.
        Assert.Equal(5 + 1 + 4 + 1, trained.Count);
        Assert.True(trained.Count(i => !chat.IsTrained(i - 1)) == 2, "two separate trained spans");

        // prompt/completion goes through the same template: the completion and its end-of-turn token are trained.
        var single = tokenized[1];
        Assert.Equal(2, Enumerable.Range(0, single.Tokens.Count).Count(single.IsTrained));
        Assert.True(single.IsTrained(single.Tokens.Count - 2) || single.IsTrained(single.Tokens.Count - 1));
    }

    [Fact]
    public void Examples_whose_completion_is_beyond_the_window_are_unusable()
    {
        using var tokenizer = new DatasetTokenizer();
        var longPrompt = new string('x', 400);
        var examples = Parse($"{{\"prompt\": \"{longPrompt}\", \"completion\": \"y\"}}");
        var error = Assert.Throws<DatasetException>(() => tokenizer.Tokenize(FinetuneTestModels.SmallPath, examples, 64));
        Assert.Equal(DatasetException.ValidationFailed, error.Code);
        Assert.Contains("64-token", error.Message);
    }

    [Fact]
    public void The_held_out_split_is_deterministic_and_keeps_a_training_example()
    {
        var examples = Enumerable.Range(0, 20).Select(i => new LLMTune.Engine.Training.TrainingExample([i, i + 1], 1)).ToList();
        var (train, eval) = DatasetPreparer.Split(examples, 0.1, 42);
        Assert.Equal(18, train.Count);
        Assert.Equal(2, eval.Count);
        Assert.Equal(eval, DatasetPreparer.Split(examples, 0.1, 42).Eval);
        Assert.Empty(train.Intersect(eval));
        var (oneTrain, oneEval) = DatasetPreparer.Split(examples.Take(2).ToList(), 0.1, 1);
        Assert.Single(oneTrain);
        Assert.Single(oneEval);
        Assert.Empty(DatasetPreparer.Split(examples.Take(1).ToList(), 0.1, 1).Eval);
    }
}
