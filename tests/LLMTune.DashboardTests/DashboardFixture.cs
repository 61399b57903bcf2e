using LLMTune.Engine.TinyModel;
using LLMTune.Testing;
using Microsoft.Playwright;

namespace LLMTune.DashboardTests;

/// <summary>
/// One real host (Kestrel on loopback, every module, the bundled model for inference and fine-tuning, quick worker
/// settings) and one headless Chromium per test class. Chromium is Debian's package (test.sh installs it); when it
/// is missing the browser tests skip and say so.
/// </summary>
public sealed class DashboardFixture : IAsyncLifetime
{
    public const string OperatorToken = "operator-token-for-dashboard-tests";

    private IPlaywright? playwright;

    public TestHost Host { get; private set; } = null!;
    public IBrowser? Browser { get; private set; }
    public string? SkipReason { get; private set; }
    public string Key => Host.InitialKey;

    /// <summary>Screenshots land in the test output folder (bin/…/screenshots), never in the repository.</summary>
    public static string ScreenshotFolder { get; } = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "screenshots")).FullName;

    public async ValueTask InitializeAsync()
    {
        var model = BundledModel.Find() ?? throw new InvalidOperationException("The bundled model (models/llmtune-tiny.gguf) is missing.");
        Host = await TestHost.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Admin:OperatorToken"] = OperatorToken,
            ["Inference:Models:llmtune/tiny:Path"] = model,
            ["Finetune:BaseModels:llmtune/tiny:Path"] = model,
            ["Finetune:Worker:PollInterval"] = "00:00:00.200",
            ["Finetune:Worker:ProgressInterval"] = "00:00:00.300",
            ["Finetune:Training:Threads"] = "2",
            ["Finetune:Training:CheckpointInterval"] = "2",
            ["Outbound:AllowedHosts:0"] = "127.0.0.1",
        });

        var chromium = FindChromium();
        if (chromium is null)
        {
            SkipReason = "Chromium is not installed (Debian's chromium package: apt-get install chromium, or set LLMTUNE_CHROMIUM to a Chromium binary); test.sh installs it when run as root.";
            return;
        }

        // Playwright's driver ships in the NuGet package; the browser is the system's, so nothing is downloaded.
        playwright = await Playwright.CreateAsync();
        Browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        });
    }

    /// <summary>A fresh tab with its own session storage, at the dashboard.</summary>
    public async Task<IPage> NewPageAsync()
    {
        Assert.SkipWhen(SkipReason is not null, SkipReason ?? "");
        var context = await Browser!.NewContextAsync(new BrowserNewContextOptions { BaseURL = Host.Address.ToString(), ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        context.SetDefaultTimeout(30_000);
        var page = await context.NewPageAsync();
        page.Dialog += (_, dialog) => dialog.AcceptAsync();
        await page.GotoAsync("/");
        return page;
    }

    public static Task ScreenshotAsync(IPage page, string name) =>
        page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ScreenshotFolder, $"{name}.png"), FullPage = true });

    private static string? FindChromium()
    {
        var candidates = new[] { Environment.GetEnvironmentVariable("LLMTUNE_CHROMIUM"), "/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser" };
        return candidates.FirstOrDefault(path => !string.IsNullOrEmpty(path) && File.Exists(path));
    }

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }

        playwright?.Dispose();
        if (Host is not null)
        {
            await Host.DisposeAsync();
        }
    }
}

/// <summary>Steps several tests share.</summary>
public static class DashboardSteps
{
    /// <summary>Signs in with a workspace key, using only the keyboard (the token field has focus on arrival).</summary>
    public static async Task SignInAsync(this IPage page, string key)
    {
        await page.Keyboard.TypeAsync(key);
        await page.Keyboard.PressAsync("Enter");
        await page.GetByRole(AriaRole.Heading, new() { Name = "API keys", Level = 1 }).WaitForAsync();
    }

    public static async Task OpenAsync(this IPage page, string route, string heading)
    {
        await page.EvaluateAsync("route => { location.hash = route; }", route);
        await page.GetByRole(AriaRole.Heading, new() { Name = heading, Exact = true, Level = 1 }).WaitForAsync();
    }
}
