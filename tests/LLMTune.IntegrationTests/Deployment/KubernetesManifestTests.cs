using System.Text.Json;
using LLMTune.Host;

namespace LLMTune.IntegrationTests.Deployment;

/// <summary>
/// k8s/: the base and both overlays as kustomize renders them (<c>kubectl kustomize</c>; the base is also read file by
/// file where kubectl is missing), checked for what an operator relies on.
/// </summary>
public sealed class KubernetesManifestTests
{
    private static readonly IReadOnlyList<string> HostModules = ComposeAndImageTests.HostModules;

    /// <summary>Every service LLMTune deploys (also those whose module is not in this build's host yet).</summary>
    private static readonly string[] DeployedTargets = ["gateway", "inference", "finetune", "batch", "webhooks", "billing"];

    private static readonly string[] Autoscaled = ["gateway", "inference", "batch", "webhooks"];

    public static TheoryData<string> Sources() => new("k8s/base", "k8s/overlays/dev", "k8s/overlays/prod");

    public static TheoryData<string, string> SourcesAndTargets()
    {
        var data = new TheoryData<string, string>();
        foreach (var source in new[] { "k8s/base", "k8s/overlays/dev", "k8s/overlays/prod" })
        {
            foreach (var target in DeployedTargets)
            {
                data.Add(source, target);
            }
        }

        return data;
    }

    /// <summary>The rendered resources; the base's own files where kubectl is missing; a skip for an overlay then.</summary>
    private static IReadOnlyList<YamlMap> Load(string source)
    {
        var rendered = DeploymentFiles.Render(source);
        if (rendered is not null)
        {
            return rendered;
        }

        if (source == "k8s/base")
        {
            return DeploymentFiles.ManifestsIn(source);
        }

        Assert.Skip(DeploymentFiles.NoKubectl);
        return [];
    }

    private static YamlMap Container(YamlMap deployment) =>
        Assert.Single(((YamlMap)deployment.At("spec", "template", "spec")!).Maps("containers"));

    private static string? Target(YamlMap deployment)
    {
        var args = Container(deployment).List("args").Cast<string>().ToList();
        return args is ["serve", "--target", var target] ? target : null;
    }

    private static IEnumerable<YamlMap> LLMTuneDeployments(IReadOnlyList<YamlMap> resources) =>
        resources.Where(r => r.Kind == "Deployment" && Target(r) is not null);

    [Theory]
    [MemberData(nameof(Sources))]
    public void Every_module_has_a_Deployment_and_a_Service_with_probes_and_resources(string source)
    {
        var resources = Load(source);
        foreach (var module in HostModules)
        {
            var deployment = resources.SingleOrDefault(r => r.Kind == "Deployment" && r.Name == module);
            Assert.True(deployment is not null, $"{source}: no Deployment '{module}'");
            Assert.Equal(module, Target(deployment));
            var container = Container(deployment);

            var port = Assert.Single(container.Maps("ports"));
            Assert.Equal("8080", port.Str("containerPort"));
            Assert.Equal("http", port.Str("name"));

            Assert.Equal("/healthz", container.StrAt("livenessProbe", "httpGet", "path"));
            Assert.Equal("/readyz", container.StrAt("readinessProbe", "httpGet", "path"));
            Assert.Equal("/healthz", container.StrAt("startupProbe", "httpGet", "path"));
            foreach (var probe in new[] { "livenessProbe", "readinessProbe", "startupProbe" })
            {
                Assert.Equal("http", container.StrAt(probe, "httpGet", "port"));
            }

            foreach (var bound in new[] { "requests", "limits" })
            {
                Assert.NotNull(container.StrAt("resources", bound, "cpu"));
                Assert.NotNull(container.StrAt("resources", bound, "memory"));
            }

            var podLabels = (YamlMap)deployment.At("spec", "template", "metadata", "labels")!;
            Assert.Equal("true", deployment.StrAt("spec", "template", "metadata", "annotations", "prometheus.io/scrape"));
            Assert.Equal("/metrics", deployment.StrAt("spec", "template", "metadata", "annotations", "prometheus.io/path"));
            Assert.Equal("true", deployment.StrAt("spec", "template", "spec", "securityContext", "runAsNonRoot"));

            var service = resources.SingleOrDefault(r => r.Kind == "Service" && r.Name == module);
            Assert.True(service is not null, $"{source}: no Service '{module}' (the gateway addresses http://{module}:8080)");
            Assert.True(Selects(service.Map("spec")!.Map("selector"), podLabels), $"{source}: Service {module} does not select its pods");
            var servicePort = Assert.Single(service.Map("spec")!.Maps("ports"));
            Assert.Equal("8080", servicePort.Str("port"));
            Assert.Equal("http", servicePort.Str("targetPort"));
            Assert.True(service.StrAt("spec", "type") is null or "ClusterIP", $"{source}: Service {module} is exposed outside the cluster");
        }
    }

    [Fact]
    public async Task Probe_and_scrape_paths_are_endpoints_the_host_serves()
    {
        var paths = new HashSet<string>(StringComparer.Ordinal);
        foreach (var deployment in LLMTuneDeployments(Load("k8s/base")))
        {
            var container = Container(deployment);
            foreach (var probe in new[] { "livenessProbe", "readinessProbe", "startupProbe" })
            {
                paths.Add(container.StrAt(probe, "httpGet", "path")!);
            }

            paths.Add(deployment.StrAt("spec", "template", "metadata", "annotations", "prometheus.io/path")!);
        }

        foreach (var service in ComposeAndImageTests.LLMTuneServices().Values)
        {
            paths.Add(new Uri(service.Map("healthcheck")!.List("test").Cast<string>().Single(a => a.StartsWith("http", StringComparison.Ordinal))).AbsolutePath);
        }

        paths.Add("/healthz"); // the Dockerfile's HEALTHCHECK (checked in ComposeAndImageTests)

        await using var host = await Testing.TestHost.StartAsync("all");
        using var client = host.Client();
        foreach (var path in paths)
        {
            using var response = await client.GetAsync(path, TestContext.Current.CancellationToken);
            Assert.True(response.IsSuccessStatusCode, $"{path} answers {(int)response.StatusCode}: a probe or scrape on it would fail");
        }
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void Only_the_gateway_is_reachable_from_outside_and_the_services_only_from_the_gateway(string source)
    {
        var resources = Load(source);
        var ingresses = resources.Where(r => r.Kind == "Ingress").ToList();
        Assert.NotEmpty(ingresses);
        var backends = ingresses.SelectMany(i => ((YamlMap)i.At("spec")!).Maps("rules"))
            .SelectMany(rule => ((YamlMap)rule.At("http")!).Maps("paths"))
            .Select(p => p.StrAt("backend", "service", "name"))
            .ToHashSet();
        Assert.Equal(["gateway"], backends);
        Assert.DoesNotContain(resources, r => r.Kind == "Service" && r.StrAt("spec", "type") is "LoadBalancer" or "NodePort");

        var policies = resources.Where(r => r.Kind == "NetworkPolicy").ToList();
        Assert.Contains(policies, p => p.At("spec", "podSelector") is YamlMap { Values.Count: 0 } && p.Map("spec")!.List("ingress").Count == 0
            && p.Map("spec")!.List("policyTypes").Contains("Ingress"));

        foreach (var deployment in resources.Where(r => r.Kind == "Deployment"))
        {
            var labels = (YamlMap)deployment.At("spec", "template", "metadata", "labels")!;
            var rules = policies.Where(p => Selects((YamlMap?)p.At("spec", "podSelector"), labels))
                .SelectMany(p => p.Map("spec")!.Maps("ingress"))
                .ToList();
            var openToAll = rules.Any(r => r.List("from").Count == 0);
            if (Target(deployment) == "gateway")
            {
                Assert.True(openToAll, $"{source}: no policy admits outside traffic to the gateway");
                continue;
            }

            Assert.False(openToAll, $"{source}: {deployment.Name} accepts traffic from anywhere");
            var peers = rules.SelectMany(r => r.Maps("from")).ToList();
            if (Target(deployment) is not null)
            {
                Assert.Contains(peers, peer => peer.StrAt("podSelector", "matchLabels", "app.kubernetes.io/name") == "gateway");
                foreach (var peer in peers)
                {
                    var fromGateway = peer.StrAt("podSelector", "matchLabels", "app.kubernetes.io/name") == "gateway" && !peer.Has("namespaceSelector");
                    var fromMonitoring = peer.StrAt("namespaceSelector", "matchLabels", "kubernetes.io/metadata.name") == "monitoring" && !peer.Has("podSelector");
                    Assert.True(fromGateway || fromMonitoring, $"{source}: {deployment.Name} admits a peer other than the gateway or monitoring");
                }
            }
        }

        // The bus and the store: reachable from LLMTune's pods.
        var llmtunePod = new Dictionary<string, object?> { ["app.kubernetes.io/part-of"] = "llmtune" };
        var rabbit = resources.Single(r => r.Kind == "RabbitmqCluster");
        var mongo = resources.Single(r => r.Kind == "MongoDBCommunity");
        foreach (var storePod in new[] { ("app.kubernetes.io/name", rabbit.Name), ("app", mongo.Name + "-svc") })
        {
            var labels = new YamlMap(new Dictionary<string, object?> { [storePod.Item1] = storePod.Item2 });
            var admits = policies.Where(p => Selects((YamlMap?)p.At("spec", "podSelector"), labels))
                .SelectMany(p => p.Map("spec")!.Maps("ingress"))
                .SelectMany(r => r.Maps("from"))
                .Any(peer => Selects(peer.Map("podSelector"), new YamlMap(llmtunePod)) && !peer.Has("namespaceSelector"));
            Assert.True(admits, $"{source}: no policy lets LLMTune's services reach {storePod.Item2}");
        }
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void Gateway_inference_batch_and_webhooks_autoscale_and_every_module_has_a_disruption_budget(string source)
    {
        var resources = Load(source);
        var deployments = LLMTuneDeployments(resources).ToDictionary(d => Target(d)!);
        var scaled = resources.Where(r => r.Kind == "HorizontalPodAutoscaler")
            .Select(h => h.StrAt("spec", "scaleTargetRef", "name")!)
            .ToList();
        Assert.Equal(Autoscaled.Order(), scaled.Order());
        Assert.All(scaled, name => Assert.True(deployments.ContainsKey(name), $"{source}: an HPA scales a missing Deployment {name}"));

        var budgets = resources.Where(r => r.Kind == "PodDisruptionBudget").ToList();
        foreach (var (target, deployment) in deployments)
        {
            var labels = (YamlMap)deployment.At("spec", "template", "metadata", "labels")!;
            Assert.True(budgets.Any(b => Selects((YamlMap?)b.At("spec", "selector"), labels)), $"{source}: no PodDisruptionBudget for {target}");
        }
    }

    [Theory]
    [MemberData(nameof(SourcesAndTargets))]
    public void Every_environment_variable_names_a_real_setting(string source, string target)
    {
        if (!HostModules.Contains(target))
        {
            Assert.Skip($"module '{target}' is not in this build's host (LLMTuneHost.Modules()); its settings are checked once it is");
        }

        var resources = Load(source);
        var deployment = LLMTuneDeployments(resources).Single(d => Target(d) == target);
        var container = Container(deployment);
        var env = container.Maps("env").ToList();
        var keys = new ConfigurationKeys();

        // Variables referenced as $(NAME) by a later entry only assemble that entry (Kubernetes expands them).
        var helpers = env.Select(e => e.Str("value") ?? "")
            .SelectMany(v => System.Text.RegularExpressions.Regex.Matches(v, @"\$\((?<name>[A-Za-z_][A-Za-z0-9_]*)\)").Select(m => m.Groups["name"].Value))
            .ToHashSet(StringComparer.Ordinal);
        var problems = env.Where(e => !helpers.Contains(e.Str("name")!))
            .Select(e => keys.Problem(e.Str("name")!, e.Str("value")))
            .ToList();

        foreach (var configMap in container.Maps("envFrom").Select(f => f.StrAt("configMapRef", "name")))
        {
            var map = resources.SingleOrDefault(r => r.Kind == "ConfigMap" && r.Name == configMap);
            Assert.True(map is not null, $"{source}: {target} reads a ConfigMap '{configMap}' that is not there");
            problems.AddRange(map.Map("data")!.Values.Select(kv => keys.Problem(kv.Key, kv.Value as string)));
        }

        Assert.Empty(problems.OfType<string>());
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void No_secret_is_written_into_the_manifests(string source)
    {
        var resources = Load(source);
        Assert.DoesNotContain(resources, r => r.Kind == "Secret");
        foreach (var map in resources.Where(r => r.Kind == "ConfigMap"))
        {
            Assert.DoesNotContain(map.Map("data")!.Values.Keys, key => ComposeAndImageTests.SecretName().IsMatch(key));
        }

        foreach (var deployment in resources.Where(r => r.Kind == "Deployment"))
        {
            foreach (var container in ((YamlMap)deployment.At("spec", "template", "spec")!).Maps("containers"))
            {
                var env = container.Maps("env").ToList();
                var fromSecrets = env.Where(e => e.At("valueFrom", "secretKeyRef") is not null).Select(e => e.Str("name")!).ToHashSet();
                foreach (var entry in env.Where(e => ComposeAndImageTests.SecretName().IsMatch(e.Str("name")!)))
                {
                    Assert.True(fromSecrets.Contains(entry.Str("name")!), $"{source}: {deployment.Name} sets {entry.Str("name")} literally");
                }

                // A value that embeds credentials takes them from Secret-backed variables only.
                foreach (var entry in env.Where(e => e.Str("value") is { } v && v.Contains('@', StringComparison.Ordinal) && v.Contains("://", StringComparison.Ordinal)))
                {
                    var userInfo = new Uri(entry.Str("value")!.Replace("$(", "x", StringComparison.Ordinal).Replace(")", "x", StringComparison.Ordinal)).UserInfo;
                    var parts = System.Text.RegularExpressions.Regex.Matches(entry.Str("value")!, @"\$\((?<name>[A-Za-z0-9_]+)\)").Select(m => m.Groups["name"].Value).ToList();
                    Assert.True(userInfo.Length == 0 || (parts.Count > 0 && parts.All(fromSecrets.Contains)), $"{source}: {entry.Str("name")} carries literal credentials");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void The_bus_and_the_store_come_from_their_operators_and_the_services_read_the_secrets_they_create(string source)
    {
        var resources = Load(source);
        var rabbit = resources.Single(r => r.Kind == "RabbitmqCluster");
        Assert.Equal("rabbitmq.com/v1beta1", rabbit.Str("apiVersion"));
        Assert.Matches(@"(?m)^default_queue_type\s*=\s*quorum\s*$", rabbit.StrAt("spec", "rabbitmq", "additionalConfig"));

        var mongo = resources.Single(r => r.Kind == "MongoDBCommunity");
        Assert.Equal("mongodbcommunity.mongodb.com/v1", mongo.Str("apiVersion"));
        Assert.Equal("ReplicaSet", mongo.StrAt("spec", "type"));
        var user = Assert.Single(mongo.Map("spec")!.Maps("users"));

        // The operators' naming: <cluster>-default-user (username, password); <resource>-<db>-<user> (connectionString.standard).
        var operatorSecrets = new Dictionary<string, string[]>
        {
            [$"{rabbit.Name}-default-user"] = ["username", "password"],
            [$"{mongo.Name}-{user.Str("db")}-{user.Str("name")}"] = ["connectionString.standard"],
        };
        foreach (var deployment in LLMTuneDeployments(resources))
        {
            var env = Container(deployment).Maps("env").ToList();
            foreach (var reference in env.Select(e => (YamlMap?)e.At("valueFrom", "secretKeyRef")).OfType<YamlMap>())
            {
                var name = reference.Str("name")!;
                Assert.True(name == "llmtune-secrets" || (operatorSecrets.TryGetValue(name, out var keys) && keys.Contains(reference.Str("key"))),
                    $"{source}: {deployment.Name} reads {name}/{reference.Str("key")}, which neither the operators nor k8s/README.md create");
            }

            Assert.Contains($"@{rabbit.Name}:5672/", env.Single(e => e.Str("name") == "ConnectionStrings__RabbitMq").Str("value"));
        }
    }

    [Fact]
    public void Every_gateway_cluster_addresses_a_module_service_on_8080_in_compose_and_k8s()
    {
        using var appSettings = JsonDocument.Parse(DeploymentFiles.Read("host/LLMTune.Host/appsettings.json"));
        var clusters = appSettings.RootElement.GetProperty("ReverseProxy").GetProperty("Clusters").EnumerateObject().ToList();
        var k8sServices = Load("k8s/base").Where(r => r.Kind == "Service").Select(r => r.Name).ToHashSet();
        var composeServices = ComposeAndImageTests.LLMTuneServices();

        // Every module with public routes has a cluster of its own name (that is where the gateway forwards them).
        var routed = LLMTuneHost.Modules().Where(m => m.Name != "gateway" && m.Routes.Count > 0).Select(m => m.Name).Distinct();
        Assert.Empty(routed.Except(clusters.Select(c => c.Name)));

        foreach (var cluster in clusters)
        {
            Assert.Contains(cluster.Name, HostModules);
            foreach (var destination in cluster.Value.GetProperty("Destinations").EnumerateObject())
            {
                var address = new Uri(destination.Value.GetProperty("Address").GetString()!);
                Assert.Equal(cluster.Name, address.Host);
                Assert.Equal(8080, address.Port);
            }

            Assert.Contains(cluster.Name, k8sServices);
            Assert.True(composeServices.ContainsKey(cluster.Name), $"compose has no service '{cluster.Name}'");
        }
    }

    [Fact]
    public void Kustomizations_list_files_that_exist_and_the_overlays_build_on_the_base()
    {
        var kustomizations = Directory.GetFiles(DeploymentFiles.PathOf("k8s"), "kustomization.yaml", SearchOption.AllDirectories);
        Assert.True(kustomizations.Length >= 4, "k8s/base, k8s/overlays/dev, k8s/overlays/prod and components");
        foreach (var file in kustomizations)
        {
            var folder = Path.GetDirectoryName(file)!;
            var kustomization = (YamlMap)DeploymentFiles.ParseDocuments(File.ReadAllText(file)).Single()!;
            var referenced = kustomization.List("resources").Cast<string>()
                .Concat(kustomization.List("components").Cast<string>())
                .Concat(kustomization.Maps("patches").Select(p => p.Str("path")).OfType<string>());
            foreach (var entry in referenced)
            {
                var path = Path.GetFullPath(Path.Combine(folder, entry));
                Assert.True(File.Exists(path) || File.Exists(Path.Combine(path, "kustomization.yaml")),
                    $"{Path.GetRelativePath(DeploymentFiles.Root, file)} lists '{entry}', which does not exist");
            }
        }

        foreach (var overlay in new[] { "dev", "prod" })
        {
            var kustomization = (YamlMap)DeploymentFiles.ParseDocuments(DeploymentFiles.Read($"k8s/overlays/{overlay}/kustomization.yaml")).Single()!;
            Assert.Contains("../../base", kustomization.List("resources").Cast<string>());
            Assert.False(string.IsNullOrEmpty(kustomization.Str("namespace")), $"overlay {overlay} sets no namespace");
        }

        // Every base file is part of the base.
        var baseKustomization = (YamlMap)DeploymentFiles.ParseDocuments(DeploymentFiles.Read("k8s/base/kustomization.yaml")).Single()!;
        var listed = baseKustomization.List("resources").Cast<string>().ToHashSet();
        var files = Directory.GetFiles(DeploymentFiles.PathOf("k8s/base"), "*.yaml").Select(Path.GetFileName).Where(f => f != "kustomization.yaml");
        Assert.Empty(files.Except(listed));
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void Kustomize_renders_with_one_LLMTune_image_and_one_namespace(string source)
    {
        var rendered = DeploymentFiles.Render(source);
        if (rendered is null)
        {
            Assert.Skip(DeploymentFiles.NoKubectl);
        }

        var images = LLMTuneDeployments(rendered).Select(d => Container(d).Str("image")).Distinct().ToList();
        var image = Assert.Single(images);
        Assert.Contains(':', image ?? "");
        Assert.Equal(DeployedTargets.Order(), LLMTuneDeployments(rendered).Select(d => Target(d)!).Order());
        if (source != "k8s/base")
        {
            var namespaces = rendered.Where(r => r.Kind != "Namespace").Select(r => r.StrAt("metadata", "namespace")).Distinct().ToList();
            Assert.Single(namespaces);
            Assert.NotNull(namespaces[0]);
        }
    }

    [Fact]
    public void Prod_serves_a_vLLM_deployment_through_the_model_registry()
    {
        var rendered = DeploymentFiles.Render("k8s/overlays/prod");
        if (rendered is null)
        {
            Assert.Skip(DeploymentFiles.NoKubectl);
        }

        var inference = Container(rendered.Single(r => r.Kind == "Deployment" && r.Name == "inference"));
        var upstream = inference.Maps("env").Single(e => e.Str("name")!.EndsWith("__Upstream__BaseUrl", StringComparison.Ordinal));
        Assert.StartsWith("Inference__Models__", upstream.Str("name"));
        var address = new Uri(upstream.Str("value")!);

        var service = rendered.Single(r => r.Kind == "Service" && r.Name == address.Host);
        Assert.Contains(service.Map("spec")!.Maps("ports"), p => p.Str("port") == address.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var vllm = rendered.Single(r => r.Kind == "Deployment" && Selects(service.Map("spec")!.Map("selector"), (YamlMap)r.At("spec", "template", "metadata", "labels")!));
        var container = Container(vllm);
        Assert.Contains("vllm", container.Str("image"));
        Assert.Equal("1", container.StrAt("resources", "limits", "nvidia.com/gpu"));

        // The model id vLLM serves is the one the registry asks for.
        var modelId = upstream.Str("name")!["Inference__Models__".Length..^"__Upstream__BaseUrl".Length];
        var served = inference.Maps("env").Single(e => e.Str("name") == $"Inference__Models__{modelId}__Upstream__Model").Str("value");
        Assert.Contains($"--served-model-name={served}", container.List("args").Cast<string>());
    }

    /// <summary>Whether a label selector (matchLabels/matchExpressions, or a plain map as in a Service) selects these labels.</summary>
    private static bool Selects(YamlMap? selector, YamlMap labels)
    {
        if (selector is null)
        {
            return false;
        }

        var matchLabels = selector.Has("matchLabels") || selector.Has("matchExpressions") ? selector.Map("matchLabels") : selector;
        foreach (var (key, value) in matchLabels?.Values ?? new Dictionary<string, object?>())
        {
            if (labels.Str(key) != value as string)
            {
                return false;
            }
        }

        foreach (var expression in selector.Maps("matchExpressions"))
        {
            var actual = labels.Str(expression.Str("key")!);
            var values = expression.List("values").Cast<string>().ToList();
            var ok = expression.Str("operator") switch
            {
                "In" => actual is not null && values.Contains(actual),
                "NotIn" => actual is null || !values.Contains(actual),
                "Exists" => actual is not null,
                "DoesNotExist" => actual is null,
                _ => false,
            };
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }
}
