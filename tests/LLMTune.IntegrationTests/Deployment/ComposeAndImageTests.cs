using System.Text.RegularExpressions;
using LLMTune.Host;

namespace LLMTune.IntegrationTests.Deployment;

/// <summary>
/// docker-compose.yml and the Dockerfile, checked as files (no Docker engine here): every module is its own container,
/// the start order follows healthchecks, only the gateway is published, secrets come from .env, settings are real.
/// </summary>
public sealed partial class ComposeAndImageTests
{
    internal static readonly IReadOnlyList<string> HostModules = LLMTuneHost.Modules().Select(m => m.Name).Distinct().ToList();

    private static readonly YamlMap Services = DeploymentFiles.Compose().Map("services")!;

    /// <summary>The compose services that run LLMTune (<c>serve --target X</c>), by target.</summary>
    internal static IReadOnlyDictionary<string, YamlMap> LLMTuneServices() => Services.Values
        .Select(kv => (Name: kv.Key, Service: (YamlMap)kv.Value!))
        .Where(s => s.Service.List("command").FirstOrDefault() as string == "serve")
        .ToDictionary(s => s.Name, s => s.Service);

    public static TheoryData<string> ComposeTargets() => new(LLMTuneServices().Keys);

    [Fact]
    public void Every_module_runs_in_its_own_container_with_a_readiness_check_on_the_bus_and_the_store()
    {
        var services = LLMTuneServices();
        var images = new HashSet<string>();
        foreach (var module in HostModules)
        {
            Assert.True(services.TryGetValue(module, out var service), $"docker-compose.yml has no service '{module}'");
            Assert.Equal(["serve", "--target", module], service.List("command").Cast<string>());
            images.Add(service.Str("image") ?? "");
            Assert.NotNull(service.Map("build"));
            Assert.Contains("/readyz", string.Join(' ', service.Map("healthcheck")!.List("test")));
            foreach (var infrastructure in new[] { "rabbitmq", "mongo" })
            {
                Assert.Equal("service_healthy", service.Map("depends_on")?.Map(infrastructure)?.Str("condition"));
            }
        }

        Assert.Single(images); // one image, many targets
    }

    [Fact]
    public void Containers_start_in_order_of_their_healthchecks()
    {
        foreach (var (name, value) in Services.Values)
        {
            var service = (YamlMap)value!;
            foreach (var (dependency, condition) in service.Map("depends_on")?.Values ?? new Dictionary<string, object?>())
            {
                var wanted = ((YamlMap)condition!).Str("condition");
                // A one-shot init step may only wait for its target to start (that target turns healthy through it).
                var oneShot = service.Str("restart") == "no" && wanted == "service_started";
                Assert.True(oneShot || wanted is "service_healthy" or "service_completed_successfully", $"{name} depends on {dependency} with '{wanted}'");
                var target = Services.Map(dependency);
                Assert.True(target is not null, $"{name} depends on a service '{dependency}' that does not exist");
                if (wanted == "service_healthy")
                {
                    Assert.True(target.Map("healthcheck") is not null, $"{name} waits for {dependency} to be healthy, which has no healthcheck");
                }
            }
        }

        // The gateway waits for every service it forwards to, so a healthy gateway means a ready platform.
        var gatewayDependencies = Services.Map("gateway")!.Map("depends_on")!.Values.Keys;
        Assert.Empty(LLMTuneServices().Keys.Except(["gateway"]).Except(gatewayDependencies));
    }

    [Fact]
    public void Only_the_gateway_publishes_a_port()
    {
        var published = Services.Values.Where(s => ((YamlMap)s.Value!).Has("ports")).Select(s => s.Key);
        Assert.Equal(["gateway"], published);
        Assert.Matches(@":8080$", (string)Services.Map("gateway")!.List("ports").Single()!);
    }

    [Fact]
    public void RabbitMq_has_the_management_ui_and_quorum_queues_and_MongoDB_is_an_initiated_replica_set()
    {
        var rabbit = Services.Map("rabbitmq")!;
        Assert.Contains("management", rabbit.Str("image"));
        var conf = rabbit.List("volumes").Cast<string>().Single(v => v.Contains("rabbitmq.conf", StringComparison.Ordinal)).Split(':')[0];
        Assert.Matches(@"(?m)^default_queue_type\s*=\s*quorum\s*$", DeploymentFiles.Read(conf.TrimStart('.', '/')));

        var mongo = Services.Map("mongo")!;
        Assert.Equal(["--replSet", "rs0"], mongo.List("command").Cast<string>().Take(2));
        var init = Services.Values.Select(s => (YamlMap)s.Value!).Single(s => string.Join(' ', s.List("entrypoint")).Contains("rs.initiate", StringComparison.Ordinal));
        Assert.Equal("no", init.Str("restart"));
        foreach (var service in LLMTuneServices().Values)
        {
            Assert.Contains("replicaSet=rs0", service.Map("environment")!.Str("ConnectionStrings__MongoDb"));
        }
    }

    [Fact]
    public void Inference_and_finetune_share_the_artifact_volume_at_the_same_path()
    {
        // Local artifact locations are absolute paths: both services must see the same files under the same names.
        var inference = Services.Map("inference")!.List("volumes").Cast<string>().ToList();
        var finetune = Services.Map("finetune")!.List("volumes").Cast<string>().ToList();
        var shared = Assert.Single(inference.Intersect(finetune));
        Assert.Equal("/app/data/artifacts", shared.Split(':')[1]);
        Assert.Contains(shared.Split(':')[0], DeploymentFiles.Compose().Map("volumes")!.Values.Keys);
    }

    [Fact]
    public void Secrets_come_from_the_env_file_and_only_its_example_is_committed()
    {
        var referenced = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, value) in Services.Values)
        {
            foreach (var (variable, setting) in ((YamlMap)value!).Map("environment")?.Values ?? new Dictionary<string, object?>())
            {
                var text = setting as string ?? "";
                foreach (Match m in EnvReference().Matches(text))
                {
                    referenced.Add(m.Groups["name"].Value);
                }

                if (SecretName().IsMatch(variable))
                {
                    // A secret has no default: compose refuses to start without it (${NAME:?message}).
                    Assert.Matches(@"\$\{[A-Z0-9_]+:\?[^}]*\}", text);
                    Assert.DoesNotMatch(@"\$\{[A-Z0-9_]+:-", text);
                }
            }
        }

        var example = DeploymentFiles.Read(".env.example");
        var documented = EnvAssignment().Matches(example).Select(m => m.Groups["name"].Value).ToHashSet(StringComparer.Ordinal);
        Assert.Empty(referenced.Except(documented));
        Assert.Contains(".env", DeploymentFiles.Read(".gitignore").Split('\n').Select(l => l.Trim()));
        Assert.Contains(".env", DeploymentFiles.Read(".dockerignore").Split('\n').Select(l => l.Trim()));
    }

    [Theory]
    [MemberData(nameof(ComposeTargets))]
    public void Every_environment_variable_in_compose_is_a_real_setting(string target)
    {
        if (!HostModules.Contains(target))
        {
            Assert.Skip($"module '{target}' is not in this build's host (LLMTuneHost.Modules()); its settings are checked once it is");
        }

        var keys = new ConfigurationKeys();
        var problems = LLMTuneServices()[target].Map("environment")!.Values
            .Select(kv => keys.Problem(kv.Key, kv.Value as string))
            .OfType<string>()
            .ToList();
        Assert.Empty(problems);
    }

    [Fact]
    public void The_image_is_multi_stage_runs_as_non_root_checks_health_and_takes_the_target_as_an_argument()
    {
        var dockerfile = DeploymentFiles.Read("Dockerfile").Replace("\\\n", " ", StringComparison.Ordinal); // continuation lines
        var instructions = Regex.Matches(dockerfile, @"(?m)^(?<op>[A-Z]+)\s+(?<args>.*)$").Select(m => (Op: m.Groups["op"].Value, Args: m.Groups["args"].Value.Trim())).ToList();

        var stages = instructions.Where(i => i.Op == "FROM").Select(i => i.Args).ToList();
        Assert.True(stages.Count >= 2, "multi-stage: an SDK build stage and a runtime stage");
        Assert.Contains("dotnet/sdk", stages[0]);
        Assert.Contains("dotnet/aspnet", stages[^1]);
        Assert.Contains(instructions, i => i.Op == "COPY" && i.Args.StartsWith("--from=build", StringComparison.Ordinal));

        // The llama.cpp natives: kept for Linux, and the OpenMP runtime ggml links is installed.
        Assert.Contains("libgomp1", dockerfile);
        Assert.Contains("runtimes/linux-", dockerfile);

        var user = instructions.Last(i => i.Op == "USER").Args.Split(':')[0];
        Assert.True(int.TryParse(user, out var uid) && uid > 0, $"USER must be a numeric non-root id (Kubernetes runAsNonRoot verifies it), was '{user}'");
        Assert.Equal(1654, uid); // the id the k8s manifests run as

        var healthcheck = instructions.Single(i => i.Op == "HEALTHCHECK").Args;
        Assert.Contains("http://127.0.0.1:8080/healthz", healthcheck);

        Assert.Contains(instructions, i => i.Op == "ARG" && i.Args == "TARGET=all");
        Assert.Contains(instructions, i => i.Op == "ENV" && i.Args == $"{Host.Commands.ServeCommand.TargetVariable}=${{TARGET}}");
        Assert.Equal("[\"dotnet\", \"llmtune.dll\"]", instructions.Single(i => i.Op == "ENTRYPOINT").Args);
        Assert.Contains(instructions, i => i.Op == "EXPOSE" && i.Args == "8080");
    }

    [Fact]
    public void A_key_given_twice_is_refused_as_compose_and_kubectl_refuse_it()
    {
        // e.g. two branches that each add a `webhooks:` service: YAML readers that keep the last one hide the first.
        Assert.ThrowsAny<YamlDotNet.Core.YamlException>(() => DeploymentFiles.ParseDocuments("services:\n  webhooks: {}\n  webhooks: {}\n"));
    }

    [Fact]
    public void The_build_context_leaves_out_build_outputs_local_data_and_secrets()
    {
        var ignored = DeploymentFiles.Read(".dockerignore").Split('\n').Select(l => l.Trim()).ToHashSet();
        foreach (var entry in new[] { "**/bin/", "**/obj/", "data/", ".git/", ".env" })
        {
            Assert.Contains(entry, ignored);
        }
    }

    [GeneratedRegex(@"\$\{(?<name>[A-Za-z_][A-Za-z0-9_]*)")]
    private static partial Regex EnvReference();

    [GeneratedRegex(@"(?m)^#?\s*(?<name>[A-Z_][A-Z0-9_]*)=")]
    private static partial Regex EnvAssignment();

    [GeneratedRegex(@"(?i)(secret|password|token|encryptionkey|accesskey|_pass$)")]
    internal static partial Regex SecretName();
}
