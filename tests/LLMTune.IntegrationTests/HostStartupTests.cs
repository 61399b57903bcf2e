using System.Net.Http.Headers;
using System.Text.Json;
using LLMTune.Testing;

namespace LLMTune.IntegrationTests;

/// <summary>The executable itself: first start from nothing, a restart on the same data, graceful stop.</summary>
public sealed class HostStartupTests
{
    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task First_start_creates_and_prints_a_key_second_start_reuses_the_data()
    {
        var workDir = Directory.CreateTempSubdirectory("llmtune-startup-").FullName;
        var keyFile = Path.Combine(workDir, "data", "initial-api-key");

        string key;
        await using (var first = await HostProcess.StartAsync(workDir))
        {
            Assert.True(File.Exists(keyFile));
            key = (await File.ReadAllTextAsync(keyFile, TestContext.Current.CancellationToken)).Trim();
            Assert.StartsWith("sk_live_", key);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
            Assert.Contains(key, first.Output);
            Assert.Equal(1, CountOccurrences(first.Output, key)); // printed once, never logged
            Assert.Equal("Healthy", await ReadyStatus(first.Address));
            Assert.Equal(1, await WorkspaceKeyCount(first.Address, key));
            Assert.Equal(0, await first.StopAsync()); // SIGTERM: graceful exit
        }

        await using var second = await HostProcess.StartAsync(workDir);
        Assert.DoesNotContain("sk_live_", second.Output); // no new workspace, no new key
        Assert.Equal(key, (await File.ReadAllTextAsync(keyFile, TestContext.Current.CancellationToken)).Trim());
        Assert.Equal("Healthy", await ReadyStatus(second.Address));
        Assert.Equal(1, await WorkspaceKeyCount(second.Address, key)); // the old key still works on the reused data
        Assert.Equal(0, await second.StopAsync());
    }

    [Fact]
    public async Task A_bad_setting_stops_start_up_naming_it()
    {
        var workDir = Directory.CreateTempSubdirectory("llmtune-badconfig-").FullName;
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            HostProcess.StartAsync(workDir, "--Http:MaxRequestBodyBytes=12"));
        Assert.Contains("MaxRequestBodyBytes", error.Message);
    }

    private static int CountOccurrences(string text, string value) =>
        (text.Length - text.Replace(value, "", StringComparison.Ordinal).Length) / value.Length;

    private static async Task<string?> ReadyStatus(Uri address)
    {
        using var client = new HttpClient { BaseAddress = address };
        return JsonDocument.Parse(await client.GetStringAsync("/readyz")).RootElement.GetProperty("status").GetString();
    }

    private static async Task<int> WorkspaceKeyCount(Uri address, string key)
    {
        using var client = new HttpClient { BaseAddress = address };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return JsonDocument.Parse(await client.GetStringAsync("/v1/keys")).RootElement.GetProperty("data").GetArrayLength();
    }
}
