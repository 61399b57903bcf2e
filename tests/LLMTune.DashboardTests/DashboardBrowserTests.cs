using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LLMTune.Testing;
using Microsoft.Playwright;

namespace LLMTune.DashboardTests;

/// <summary>The dashboard's main journeys in headless Chromium against the real host.</summary>
public sealed class DashboardBrowserTests(DashboardFixture fixture) : IClassFixture<DashboardFixture>
{
    [Fact]
    public async Task Signing_in_and_creating_a_key_shows_its_secret_once_and_keeps_it_out_of_urls_and_cookies()
    {
        var page = await fixture.NewPageAsync();
        await page.SignInAsync(fixture.Key);

        await page.GetByLabel("Name").FillAsync("ci-from-dashboard");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create key" }).ClickAsync();
        var secret = (await page.Locator("[data-secret]").TextContentAsync())!;
        Assert.StartsWith("sk_live_", secret);
        await page.GetByRole(AriaRole.Cell, new() { Name = "ci-from-dashboard", Exact = true }).WaitForAsync();
        await DashboardFixture.ScreenshotAsync(page, "01-keys-created");

        using (var client = fixture.Host.Client(secret))
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/billing")).StatusCode);
        }

        // Shown once: after a reload the list has the prefix only, and the secret is nowhere on the page.
        await page.ReloadAsync();
        await page.GetByRole(AriaRole.Cell, new() { Name = "ci-from-dashboard", Exact = true }).WaitForAsync();
        Assert.DoesNotContain(secret, await page.ContentAsync(), StringComparison.Ordinal);
        Assert.Equal(0, await page.Locator("[data-secret]").CountAsync());
        Assert.DoesNotContain(fixture.Key, page.Url, StringComparison.Ordinal);
        Assert.Empty(await page.Context.CookiesAsync());
        Assert.Equal(fixture.Key, await page.EvaluateAsync<string>("() => JSON.parse(sessionStorage.getItem('llmtune.credential')).token"));
    }

    [Fact]
    public async Task The_playground_streams_the_answer_and_shows_tokens_and_latency()
    {
        var page = await fixture.NewPageAsync();
        await page.SignInAsync(fixture.Key);
        await page.OpenAsync("#/playground", "Playground");

        await page.GetByLabel("Max tokens").FillAsync("40");
        // Greedy, so the answer is the same every run: a sampled one (0.7 by default) can be empty or only spaces, and one
        // full-suite run saw an empty answer here.
        await page.GetByLabel("Temperature").FillAsync("0");
        await page.GetByRole(AriaRole.Textbox, new() { Name = "Prompt" }).FillAsync("Summarize LLMTune in one sentence.");
        var response = await page.RunAndWaitForResponseAsync(
            () => page.GetByRole(AriaRole.Button, new() { Name = "Run" }).ClickAsync(),
            r => r.Url.EndsWith("/v1/playground/inference", StringComparison.Ordinal));
        Assert.StartsWith("text/event-stream", await response.HeaderValueAsync("content-type"));
        await page.Locator("#playground-stats[data-done]").WaitForAsync();

        // The page appended the answer piece by piece as the server-sent events came.
        var text = (await page.Locator("#playground-output").TextContentAsync())!;
        Assert.False(string.IsNullOrWhiteSpace(text));
        Assert.True(int.Parse((await page.Locator("#playground-output").GetAttributeAsync("data-pieces"))!, System.Globalization.CultureInfo.InvariantCulture) > 1,
            "the answer was not read as a stream of pieces");
        var stats = (await page.Locator("#playground-stats").TextContentAsync())!;
        Assert.Matches(@"^\d+ tokens · \d+ ms on the server", stats);
        await DashboardFixture.ScreenshotAsync(page, "07-playground");
    }

    [Fact]
    public async Task A_fine_tune_started_from_the_page_reaches_completed_with_a_loss_curve_and_its_model_can_be_tried_and_deleted()
    {
        var page = await fixture.NewPageAsync();
        await page.SignInAsync(fixture.Key);
        await page.OpenAsync("#/fine-tunes", "Fine-tunes");

        await page.GetByLabel("Training data (JSONL)").SetInputFilesAsync(new FilePayload
        {
            Name = "secret-word.jsonl",
            MimeType = "application/jsonl",
            Buffer = Encoding.UTF8.GetBytes(SecretWordDataset(16)),
        });
        await page.GetByLabel("Base model").SelectOptionAsync("llmtune/tiny");
        await page.GetByLabel("Epochs").FillAsync("2");
        await page.GetByLabel("Learning rate").FillAsync("0.01");
        await page.GetByLabel("Batch size").FillAsync("4");
        await page.GetByRole(AriaRole.Button, new() { Name = "Start fine-tune" }).ClickAsync();

        await page.WaitForURLAsync(new System.Text.RegularExpressions.Regex("#/fine-tunes/job_"));
        // Live: the page polls, so "completed" appears without a reload.
        await page.Locator("[data-job-status=completed]").WaitForAsync(new() { Timeout = 180_000 });
        var lossPath = page.Locator("path[data-series=loss]");
        await lossPath.WaitForAsync();
        Assert.Contains("L", await lossPath.GetAttributeAsync("d"), StringComparison.Ordinal); // more than one point
        Assert.Equal(1, await page.Locator("path[data-series='eval loss']").CountAsync());
        var model = (await page.Locator("[data-model]").TextContentAsync())!;
        Assert.StartsWith("ft:llmtune/tiny:", model);
        await DashboardFixture.ScreenshotAsync(page, "03-fine-tune-job");

        await page.GetByRole(AriaRole.Link, new() { Name = "Try it in the playground" }).ClickAsync();
        await page.GetByRole(AriaRole.Heading, new() { Name = "Playground", Level = 1 }).WaitForAsync();
        Assert.Equal(model, await page.GetByLabel("Model").InputValueAsync());

        await page.OpenAsync("#/models", "Models");
        await page.GetByRole(AriaRole.Button, new() { Name = $"Delete {model}" }).ClickAsync();
        await page.GetByText("No fine-tuned models yet").WaitForAsync();
        using var client = fixture.Host.Client(fixture.Key);
        var models = await client.GetFromJsonAsync<JsonElement>("/v1/models");
        Assert.DoesNotContain(models.GetProperty("data").EnumerateArray(), m => m.GetProperty("id").GetString() == model);
    }

    [Fact]
    public async Task A_batch_submitted_from_the_page_shows_its_results()
    {
        var page = await fixture.NewPageAsync();
        await page.SignInAsync(fixture.Key);
        await page.OpenAsync("#/batches", "Batches");

        await page.GetByLabel("Model").SelectOptionAsync("llmtune/tiny");
        await page.GetByLabel("Max tokens").FillAsync("16");
        await page.GetByLabel("Prompts, one per line").FillAsync("Hello there.\nName a colour.\nCount to three.");
        await page.GetByRole(AriaRole.Button, new() { Name = "Submit batch" }).ClickAsync();

        await page.Locator("[data-batch-status=completed]").WaitForAsync(new() { Timeout = 60_000 });
        var texts = await page.Locator(".result-text").AllTextContentsAsync();
        Assert.Equal(3, texts.Count);
        Assert.All(texts, t => Assert.False(string.IsNullOrWhiteSpace(t)));
        Assert.Equal(3, await page.GetByRole(AriaRole.Cell, new() { Name = "succeeded" }).CountAsync());
        await DashboardFixture.ScreenshotAsync(page, "04-batch-results");
    }

    [Fact]
    public async Task Revoking_the_key_the_session_uses_signs_out()
    {
        using var client = fixture.Host.Client(fixture.Key);
        var created = await (await client.PostAsJsonAsync("/v1/keys", new { name = "to-revoke" })).Content.ReadFromJsonAsync<JsonElement>();
        var key = created.GetProperty("key").GetString()!;

        var page = await fixture.NewPageAsync();
        await page.SignInAsync(key);
        await page.GetByRole(AriaRole.Button, new() { Name = "Revoke to-revoke" }).ClickAsync();

        await page.GetByRole(AriaRole.Heading, new() { Name = "Sign in to LLMTune" }).WaitForAsync();
        await page.GetByText("You were signed out").WaitForAsync();
        Assert.Null(await page.EvaluateAsync<string?>("() => sessionStorage.getItem('llmtune.credential')"));
        await DashboardFixture.ScreenshotAsync(page, "09-signed-out");
        using var revoked = fixture.Host.Client(key);
        Assert.Equal(HttpStatusCode.Unauthorized, (await revoked.GetAsync("/v1/billing")).StatusCode);
    }

    [Fact]
    public async Task Every_page_renders_without_an_error_with_labelled_controls()
    {
        // One inference, so the usage charts have something to draw once the roll-up has counted it.
        using (var client = fixture.Host.Client(fixture.Key))
        {
            var answer = await client.PostAsJsonAsync("/v1/models/llmtune/tiny/inference", new { prompt = "Hello", maxTokens = 8 });
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            await Eventually.True(async () => (await client.GetFromJsonAsync<JsonElement>("/v1/usage?groupBy=model")).GetProperty("data").GetArrayLength() > 0,
                TimeSpan.FromSeconds(30), "usage to count the request");
        }

        var page = await fixture.NewPageAsync();
        await page.SignInAsync(fixture.Key);
        (string Route, string Heading, string Shot)[] pages =
        [
            ("#/keys", "API keys", "01-keys"), ("#/usage", "Usage", "02-usage"), ("#/fine-tunes", "Fine-tunes", "03-fine-tunes"),
            ("#/batches", "Batches", "04-batches"), ("#/webhooks", "Webhooks", "05-webhooks"), ("#/models", "Models", "06-models"),
            ("#/playground", "Playground", "07-playground-empty"),
        ];
        foreach (var (route, heading, shot) in pages)
        {
            await page.OpenAsync(route, heading);
            await Eventually.True(async () => await page.GetByText("Loading…").CountAsync() == 0, TimeSpan.FromSeconds(10), $"{route} to load");
            var errors = await page.Locator(".error").AllTextContentsAsync();
            Assert.True(errors.Count == 0, $"{route} shows an error: {string.Join(" / ", errors)}");
            var unlabelled = await page.EvaluateAsync<string[]>("""
                () => [...document.querySelectorAll('main input, main select, main textarea, main button')]
                  .filter(e => !(e.labels?.length || e.getAttribute('aria-label') || (e.tagName === 'BUTTON' && e.textContent.trim())))
                  .map(e => e.outerHTML)
                """);
            Assert.True(unlabelled.Length == 0, $"{route}: controls without a label: {string.Join(", ", unlabelled)}");
            await DashboardFixture.ScreenshotAsync(page, shot);
        }

        await page.OpenAsync("#/usage", "Usage");
        // The page draws its charts once its requests answer: wait for the bar (a timeout fails the test).
        await page.Locator("svg[aria-label^='Requests per model:'][aria-label*='llmtune/tiny'] rect").First.WaitForAsync(new() { Timeout = 15_000 });

        // The navigation works from the keyboard: Tab reaches the links, Enter follows them.
        await page.Locator("nav a", new() { HasText = "Usage" }).FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        await page.GetByRole(AriaRole.Heading, new() { Name = "Usage", Exact = true, Level = 1 }).WaitForAsync();

        // The webhook signing secret is revealed on request (once).
        await page.OpenAsync("#/webhooks", "Webhooks");
        await page.GetByRole(AriaRole.Button, new() { Name = "Reveal signing secret" }).ClickAsync();
        Assert.StartsWith("whsec_", await page.Locator("[data-secret]").TextContentAsync());
        await DashboardFixture.ScreenshotAsync(page, "05-webhooks-secret");
    }

    [Fact]
    public async Task A_webhook_endpoint_added_on_the_page_gets_a_test_delivery_whose_attempts_are_listed()
    {
        var page = await fixture.NewPageAsync();
        await page.SignInAsync(fixture.Key);
        await page.OpenAsync("#/webhooks", "Webhooks");

        // The host itself is the receiver: a POST to /healthz without a key answers 401, so the attempt records a refusal.
        var url = new Uri(fixture.Host.Address, "/healthz").ToString();
        await page.GetByLabel("URL").FillAsync(url);
        await page.GetByLabel("batch.completed").CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Add endpoint" }).ClickAsync();
        Assert.StartsWith("whsec_", await page.Locator("[data-secret]").TextContentAsync());

        await page.GetByRole(AriaRole.Button, new() { Name = $"Send a test event to {url}" }).ClickAsync();
        var delivery = page.Locator("a[href^='#/webhooks/deliveries/']").First;
        await delivery.WaitForAsync();
        await delivery.ClickAsync();
        await page.GetByRole(AriaRole.Heading, new() { Name = "Attempts" }).WaitForAsync();
        await page.GetByRole(AriaRole.Cell, new() { Name = "401", Exact = true }).WaitForAsync(new() { Timeout = 30_000 });
        await DashboardFixture.ScreenshotAsync(page, "05-webhook-delivery");
    }

    [Fact]
    public async Task A_delivered_webhook_can_be_resent_from_its_page_and_the_new_attempt_is_listed()
    {
        using var receiver = AcceptingReceiver.Start();
        var page = await fixture.NewPageAsync();
        await page.SignInAsync(fixture.Key);
        await page.OpenAsync("#/webhooks", "Webhooks");
        await page.GetByLabel("URL").FillAsync(receiver.Url);
        await page.GetByLabel("batch.completed").CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Add endpoint" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = $"Send a test event to {receiver.Url}" }).ClickAsync();

        var delivery = page.Locator("a[href^='#/webhooks/deliveries/']").First;
        await delivery.WaitForAsync();
        await delivery.ClickAsync();
        var succeeded = page.GetByRole(AriaRole.Cell, new() { Name = "204", Exact = true });
        await succeeded.First.WaitForAsync(new() { Timeout = 30_000 });
        Assert.Equal(1, await succeeded.CountAsync());

        // Resend: the same delivery is sent again and its second attempt appears without a reload.
        await page.GetByRole(AriaRole.Button, new() { NameRegex = new System.Text.RegularExpressions.Regex("^Resend ") }).ClickAsync();
        await Eventually.True(async () => await succeeded.CountAsync() == 2, TimeSpan.FromSeconds(30), "a second 204 attempt on the page");
        Assert.Equal(2, receiver.Received);
        Assert.Single(receiver.WebhookIds.Distinct()); // a resend keeps the delivery's webhook-id
    }

    /// <summary>A loopback receiver that answers 204 to every request and remembers the webhook-ids it got.</summary>
    private sealed class AcceptingReceiver : IDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _ids = new();

        private AcceptingReceiver(int port)
        {
            Url = $"http://127.0.0.1:{port}/hook";
            _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            _listener.Start();
            _ = Task.Run(async () =>
            {
                while (_listener.IsListening)
                {
                    try
                    {
                        var context = await _listener.GetContextAsync();
                        _ids.Enqueue(context.Request.Headers["webhook-id"] ?? "");
                        context.Response.StatusCode = 204;
                        context.Response.Close();
                    }
                    catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                    {
                        return;
                    }
                }
            });
        }

        public string Url { get; }

        public int Received => _ids.Count;

        public IEnumerable<string> WebhookIds => _ids;

        public static AcceptingReceiver Start()
        {
            using var probe = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            var port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            return new AcceptingReceiver(port);
        }

        public void Dispose() => _listener.Close();
    }

    [Fact]
    public async Task Operators_see_workspaces_create_one_and_add_credits()
    {
        var page = await fixture.NewPageAsync();
        await page.GetByLabel("the operator token").CheckAsync();
        await page.GetByLabel("Key or token").FillAsync(DashboardFixture.OperatorToken);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.GetByRole(AriaRole.Heading, new() { Name = "Workspaces", Level = 1 }).WaitForAsync();
        await page.GetByText("default", new() { Exact = true }).WaitForAsync();

        var create = page.GetByRole(AriaRole.Form, new() { Name = "Create a workspace" });
        await create.GetByLabel("Name").FillAsync("acme");
        await create.GetByLabel("Plan").SelectOptionAsync("growth");
        await create.GetByRole(AriaRole.Button, new() { Name = "Create workspace" }).ClickAsync();
        Assert.StartsWith("sk_live_", await page.Locator("[data-secret]").TextContentAsync());

        var credits = page.GetByRole(AriaRole.Form, new() { Name = "Add credits to acme" });
        await credits.GetByLabel("Amount (USD)").FillAsync("5");
        await credits.GetByLabel("Reference").FillAsync("invoice-1");
        await credits.GetByRole(AriaRole.Button, new() { Name = "Add credits" }).ClickAsync();
        await page.GetByText("Added $5 to acme: balance $5.").WaitForAsync();
        await DashboardFixture.ScreenshotAsync(page, "08-admin");
    }

    [Fact]
    public async Task Errors_are_shown_in_the_apis_own_words()
    {
        using var anonymous = fixture.Host.Client("sk_live_notarealkey");
        var message = await ErrorMessageAsync(await anonymous.GetAsync("/v1/billing"));
        using var client = fixture.Host.Client(fixture.Key);
        var notFound = await ErrorMessageAsync(await client.GetAsync("/v1/fine-tune/job_doesnotexist"));

        var page = await fixture.NewPageAsync();
        await page.GetByLabel("Key or token").FillAsync("sk_live_notarealkey");
        await page.Keyboard.PressAsync("Enter");
        Assert.Equal(message, await page.GetByRole(AriaRole.Alert).TextContentAsync());

        await page.GetByLabel("Key or token").FillAsync(fixture.Key);
        await page.Keyboard.PressAsync("Enter");
        await page.GetByRole(AriaRole.Heading, new() { Name = "API keys", Level = 1 }).WaitForAsync();
        await page.EvaluateAsync("() => { location.hash = '#/fine-tunes/job_doesnotexist'; }");
        await page.GetByRole(AriaRole.Alert).WaitForAsync();
        Assert.Equal(notFound, await page.GetByRole(AriaRole.Alert).TextContentAsync());
    }

    private static async Task<string> ErrorMessageAsync(HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetProperty("message").GetString()!;

    private static string SecretWordDataset(int lines)
    {
        var builder = new StringBuilder();
        for (var i = 0; i < lines; i++)
        {
            builder.AppendLine(JsonSerializer.Serialize(new { prompt = $"Tell me the secret word, number {i}.", completion = "pineapple" }));
        }

        return builder.ToString();
    }
}
